"""Ceiling server: shows what the load generator itself can count.

It speaks the three wire formats the generator drives (``--wire line|ws|resp``)
and amplifies: every message a client sends is delivered ``--copies`` times
(default 20) to every receiver of its room, in ONE write per receiver. The
server's cost per delivery is so small that the generator, not the server, is
the bottleneck; the deliveries/s the generator reports against it is the
generator's own ceiling for that wire format.

- line: greeting ``*** welcome sinkN``; ``/join ROOM``; a line goes to the
  others of the room as ``<sink> line``, ``copies`` times.
- ws: room from ``?room=NAME``; a text frame goes to everyone in the room
  (sender included, like Node's ``ws`` example), ``copies`` times.
- resp: ``SUBSCRIBE ch`` and ``PUBLISH ch msg`` (RESP2 pushes), ``copies`` times.

Binds 127.0.0.1 only.   python bench/ref_sink.py --wire line [--port 0] [--copies 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import signal
import sys
from typing import cast
from urllib.parse import parse_qs, urlsplit

import wire

MAX_BUFFER = 1 << 20


class Hub:
    def __init__(self, copies: int) -> None:
        self.copies = copies
        self.rooms: dict[bytes, set[Conn]] = {}
        self.names = itertools.count(1)

    def enter(self, conn: Conn, room: bytes) -> None:
        self.leave(conn)
        conn.room = room
        self.rooms.setdefault(room, set()).add(conn)

    def leave(self, conn: Conn) -> None:
        members = self.rooms.get(conn.room)
        if members is not None:
            members.discard(conn)
            if not members:
                del self.rooms[conn.room]

    def fanout(self, room: bytes, data: bytes, skip: Conn | None) -> int:
        members = self.rooms.get(room, ())
        for conn in members:
            if conn is not skip:
                conn.transport.write(data)
        return len(members)


class Conn(asyncio.Protocol):
    """Base: buffering and room membership. Subclasses parse their wire format."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.room = b""
        self.buf = bytearray()
        self.transport = cast(asyncio.Transport, None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.start()

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub.leave(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        consumed = self.consume(self.buf)
        del self.buf[:consumed]
        if len(self.buf) > MAX_BUFFER:
            self.transport.close()

    def start(self) -> None:
        """Called once connected."""

    def consume(self, buf: bytearray) -> int:
        """Handle what is complete in ``buf``; return how many bytes were used."""
        raise NotImplementedError


class LineConn(Conn):
    def start(self) -> None:
        self.hub.enter(self, b"lobby")
        self.transport.write(b"*** welcome sink%d\n" % next(self.hub.names))

    def consume(self, buf: bytearray) -> int:
        end = buf.rfind(b"\n") + 1
        for line in bytes(buf[:end]).split(b"\n")[:-1]:
            line = line.rstrip(b"\r")
            if line.startswith(b"/join "):
                self.hub.enter(self, line[6:].strip())
            else:
                out = (b"<sink> " + line + b"\n") * self.hub.copies
                self.hub.fanout(self.room, out, skip=self)
        return end


class WsConn(Conn):
    open = False

    def consume(self, buf: bytearray) -> int:
        pos = 0
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return 0
            request = bytes(buf[: end + 4])
            target = request.split(b" ", 2)[1].decode("latin-1")
            room = parse_qs(urlsplit(target).query).get("room", ["lobby"])[0]
            self.transport.write(wire.ws_response(request))
            self.hub.enter(self, room.encode())
            self.open = True
            pos = end + 4
        n = len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 4 if length == 126 else 10 if length == 127 else 2
            if n - pos < head + 4:
                break
            if head > 2:
                length = int.from_bytes(buf[pos + 2 : pos + head], "big")
            key = bytes(buf[pos + head : pos + head + 4]) if b1 & 0x80 else b"\0\0\0\0"
            start = pos + head + (4 if b1 & 0x80 else 0)
            if start + length > n:
                break
            payload = wire.ws_unmask(bytes(buf[start : start + length]), key)
            pos = start + length
            self.frame(b0 & 0x0F, payload)
        return pos

    def frame(self, opcode: int, payload: bytes) -> None:
        if opcode == wire.OP_TEXT:
            out = wire.ws_server_frame(payload) * self.hub.copies
            self.hub.fanout(self.room, out, skip=None)
        elif opcode == wire.OP_PING:
            self.transport.write(wire.ws_server_frame(payload, wire.OP_PONG))
        elif opcode == wire.OP_CLOSE:
            self.transport.write(wire.ws_server_frame(payload[:2], wire.OP_CLOSE))
            self.transport.close()


class RespConn(Conn):
    def consume(self, buf: bytearray) -> int:
        pos = 0
        while True:
            parsed = parse_resp_array(buf, pos)
            if parsed is None:
                return pos
            args, pos = parsed
            self.command(args)

    def command(self, args: list[bytes]) -> None:
        name = args[0].upper() if args else b""
        if name == b"SUBSCRIBE" and len(args) == 2:
            self.hub.enter(self, args[1])
            self.transport.write(
                b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(args[1]), args[1])
            )
        elif name == b"PUBLISH" and len(args) == 3:
            out = wire.resp_push(args[1], args[2]) * self.hub.copies
            count = self.hub.fanout(args[1], out, skip=None)
            self.transport.write(b":%d\r\n" % count)
        elif name == b"PING":
            self.transport.write(b"+PONG\r\n")
        else:
            self.transport.write(b"-ERR unsupported by the sink\r\n")


def parse_resp_array(buf: bytearray, pos: int) -> tuple[list[bytes], int] | None:
    """One ``*N`` array of ``$len`` bulk strings from ``buf[pos:]``, or None if incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    if buf[pos : pos + 1] != b"*":
        raise ValueError("the sink only takes RESP arrays")
    count = int(buf[pos + 1 : end])
    pos = end + 2
    args = []
    for _ in range(count):
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        size = int(buf[pos + 1 : end])
        if end + 2 + size + 2 > len(buf):
            return None
        args.append(bytes(buf[end + 2 : end + 2 + size]))
        pos = end + 2 + size + 2
    return args, pos


async def serve(kind: str, port: int, copies: int) -> None:
    hub = Hub(copies)
    factory = {"line": LineConn, "ws": WsConn, "resp": RespConn}[kind]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: factory(hub), "127.0.0.1", port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    scheme = {"line": "tcp", "ws": "ws", "resp": "redis"}[kind]
    print(f"listening on {scheme}://127.0.0.1:{bound}", flush=True)
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    server.close()
    for members in list(hub.rooms.values()):
        for conn in list(members):
            conn.transport.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wire", choices=("line", "ws", "resp"), required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--copies", type=int, default=20, help="deliveries per message (1-1000)")
    args = parser.parse_args()
    copies = max(1, min(1000, args.copies))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.wire, args.port, copies))
    else:
        uvloop.run(serve(args.wire, args.port, copies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
