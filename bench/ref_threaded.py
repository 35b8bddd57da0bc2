"""Reference server: the original design, written plainly.

One thread per client, a registry dict (name -> peer) under a lock, and a
broadcast that calls ``sendall`` on every other peer of the room in turn, from
the sender's thread. Line protocol, like ChatSupport's TCP interface:

- on connect the server greets with ``*** welcome peerN``;
- ``/join ROOM`` moves the peer to ROOM (default ``lobby``);
- any other line is sent to the others of the room as ``<peerN> line``.

No TCP_NODELAY, no per-peer send lock, no buffering of our own: this is the
baseline the asyncio servers are compared with. Binds 127.0.0.1 only.

    python bench/ref_threaded.py [--port 0]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import resource
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger("ref_threaded")


@dataclass(slots=True)
class Peer:
    name: str
    sock: socket.socket
    room: str = "lobby"


class ThreadedChatServer:
    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", port), backlog=4096)
        self.registry: dict[str, Peer] = {}
        self.lock = threading.Lock()
        self.names = itertools.count(1)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def serve_forever(self) -> None:
        while True:
            conn, _addr = self.listener.accept()
            peer = Peer(f"peer{next(self.names)}", conn)
            threading.Thread(target=self.handle, args=(peer,), daemon=True).start()

    def handle(self, peer: Peer) -> None:
        with self.lock:
            self.registry[peer.name] = peer
        try:
            peer.sock.sendall(f"*** welcome {peer.name}\n".encode())
            with peer.sock.makefile("rb") as reader:
                for raw in reader:
                    line = raw.rstrip(b"\r\n")
                    if line.startswith(b"/join "):
                        peer.room = line[6:].decode("utf-8", "replace").strip() or "lobby"
                    else:
                        self.send_room(peer, b"<" + peer.name.encode() + b"> " + line + b"\n")
        except (OSError, ValueError) as exc:
            log.warning("receive from %s failed: %s", peer.name, exc)
        finally:
            self.remove(peer)

    def send_room(self, sender: Peer, data: bytes) -> None:
        with self.lock:
            others = [p for p in self.registry.values() if p is not sender]
        for other in others:
            if other.room != sender.room:
                continue
            try:
                other.sock.sendall(data)
            except OSError as exc:
                log.warning("send to %s failed: %s", other.name, exc)
                self.remove(other)

    def broadcast(self, text: str) -> None:
        data = f"*** {text}\n".encode()
        with self.lock:
            everyone = list(self.registry.values())
        for peer in everyone:
            try:
                peer.sock.sendall(data)
            except OSError as exc:
                log.warning("send to %s failed: %s", peer.name, exc)
                self.remove(peer)

    def remove(self, peer: Peer) -> None:
        with self.lock:
            self.registry.pop(peer.name, None)
        peer.sock.close()

    def stop(self) -> None:
        self.listener.close()
        with self.lock:
            everyone = list(self.registry.values())
            self.registry.clear()
        for peer in everyone:
            peer.sock.close()


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    raise_fd_limit()
    server = ThreadedChatServer(args.port)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    print(f"listening on tcp://127.0.0.1:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
