"""Reference server: plain asyncio TCP, one ``write`` per message per peer.

asyncio streams, a ``readline`` loop per client and a broadcast that calls
``writer.write`` once for every other peer of the room (no coalescing, no
awaiting a peer inside the fan-out, no bound on a peer's buffer). Same line
protocol as ``ref_threaded.py``: greeting ``*** welcome peerN``, ``/join ROOM``,
lines shown to the others as ``<peerN> line``. Binds 127.0.0.1 only.

    python bench/ref_asyncio_naive.py [--port 0] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import resource
import signal
import sys
from dataclasses import dataclass

log = logging.getLogger("ref_asyncio_naive")


@dataclass(slots=True)
class Peer:
    name: str
    writer: asyncio.StreamWriter
    room: str = "lobby"


class NaiveChatServer:
    def __init__(self) -> None:
        self.registry: dict[str, Peer] = {}
        self.names = itertools.count(1)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(f"peer{next(self.names)}", writer)
        self.registry[peer.name] = peer
        writer.write(f"*** welcome {peer.name}\n".encode())
        prefix = b"<" + peer.name.encode() + b"> "
        try:
            while line := await reader.readline():
                line = line.rstrip(b"\r\n")
                if line.startswith(b"/join "):
                    peer.room = line[6:].decode("utf-8", "replace").strip() or "lobby"
                else:
                    self.send_room(peer, prefix + line + b"\n")
        except (OSError, ValueError) as exc:
            log.warning("receive from %s failed: %s", peer.name, exc)
        finally:
            self.registry.pop(peer.name, None)
            writer.close()

    def send_room(self, sender: Peer, data: bytes) -> None:
        for other in list(self.registry.values()):
            if other is sender or other.room != sender.room:
                continue
            if other.writer.is_closing():
                log.warning("send to %s failed: closed", other.name)
                self.registry.pop(other.name, None)
                continue
            other.writer.write(data)

    def broadcast(self, text: str) -> None:
        data = f"*** {text}\n".encode()
        for peer in list(self.registry.values()):
            peer.writer.write(data)

    def stop(self) -> None:
        for peer in list(self.registry.values()):
            peer.writer.close()
        self.registry.clear()


async def serve(port: int) -> None:
    chat = NaiveChatServer()
    server = await asyncio.start_server(chat.handle, "127.0.0.1", port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on tcp://127.0.0.1:{bound}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    server.close()
    chat.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.uvloop:
        import uvloop

        uvloop.run(serve(args.port))
    else:
        asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
