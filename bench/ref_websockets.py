"""Reference server: Python ``websockets`` with ``broadcast()``.

Each text frame a client sends is relayed as-is to every client of its room,
sender included, with ``websockets.broadcast`` (writes without awaiting, no
backpressure: see websockets' docs/topics/broadcast.rst). The room comes from
the query string, ``ws://127.0.0.1:PORT/?room=NAME`` (default ``lobby``), like
``node/ws_broadcast.js``. Binds 127.0.0.1 only.

    python bench/ref_websockets.py [--port 0] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import sys
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve


class Rooms:
    def __init__(self) -> None:
        self.members: dict[str, set[ServerConnection]] = {}

    async def handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "/").query)
        room = query.get("room", ["lobby"])[0]
        members = self.members.setdefault(room, set())
        members.add(ws)
        try:
            async for message in ws:
                broadcast(members, message)
        finally:
            members.discard(ws)
            if not members:
                self.members.pop(room, None)


async def run(port: int) -> None:
    rooms = Rooms()
    async with serve(rooms.handle, "127.0.0.1", port, compression=None, backlog=4096) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on ws://127.0.0.1:{bound}", flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.uvloop:
        import uvloop

        uvloop.run(run(args.port))
    else:
        asyncio.run(run(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
