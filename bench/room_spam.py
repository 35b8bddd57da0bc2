"""Room spam (issue 19): rounds of one-message rooms, and whether memory comes back.

A ChatServer (in-memory broker) runs in this process with a short retention window; one
WebSocket client opens room `spam-N`, says one line in it and leaves, N times a round.
After each round the window (and the empty rooms' counters, two windows) runs out; the
Python heap (tracemalloc) and this process' RSS are measured before the first round and
after each one. Limits are raised as for a load test (the default caps refuse this spam
after --new-rooms-per-person rooms).

    python bench/room_spam.py --rounds 3 --rooms 10000 --retention 2
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from chatsupport import ChatServer, Config
from chatsupport.broker.memory import ROOM_TTL_FACTOR

BATCH = 200  # rooms sent before waiting for the server to catch up (a ping's pong)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def heap_mb() -> float:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] / 1e6


async def until_pong(ws: ClientConnection, ref: str) -> None:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30.0))
        if frame.get("type") == "pong" and frame.get("ref") == ref:
            return


async def spam(ws: ClientConnection, round_no: int, rooms: int) -> None:
    for start in range(0, rooms, BATCH):
        for n in range(start, min(start + BATCH, rooms)):
            room = f"spam-{round_no}-{n}"
            await ws.send(json.dumps({"type": "join", "room": room}))
            await ws.send(json.dumps({"type": "say", "room": room, "text": f"junk {n}"}))
            await ws.send(json.dumps({"type": "leave", "room": room}))
        ref = f"p{start}"
        await ws.send(json.dumps({"type": "ping", "ref": ref}))
        await until_pong(ws, ref)


async def run(rounds: int, rooms: int, retention: float) -> list[dict[str, float]]:
    config = Config(
        host="127.0.0.1",
        tcp_port=0,
        http_port=0,
        retention_seconds=retention,
        msg_rate=1e6,
        msg_burst=1e6,
        new_rooms_per_person=10**9,
        probation_seconds=0.0,
        log_level="WARNING",
    )
    server = ChatServer(config)
    await server.start()
    rows = []
    try:
        url = f"ws://127.0.0.1:{server.http_port}/ws"
        async with connect(url, max_size=1 << 22) as ws:
            await until_pong_after_welcome(ws)
            rows.append({"round": 0, "heap_mb": heap_mb(), "rss_mb": rss_mb(), "seconds": 0.0})
            for round_no in range(1, rounds + 1):
                began = time.monotonic()
                await spam(ws, round_no, rooms)
                took = time.monotonic() - began
                held = heap_mb()
                await asyncio.sleep((ROOM_TTL_FACTOR + 0.5) * retention + 1.5)  # sweeps run
                rows.append(
                    {
                        "round": round_no,
                        "heap_during_mb": held,
                        "heap_mb": heap_mb(),
                        "rss_mb": rss_mb(),
                        "seconds": took,
                    }
                )
    finally:
        await server.stop()
    return rows


async def until_pong_after_welcome(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "ping", "ref": "hello"}))
    await until_pong(ws, "hello")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--retention", type=float, default=2.0, help="seconds")
    args = parser.parse_args()
    tracemalloc.start()
    rows = asyncio.run(run(args.rounds, args.rooms, args.retention))
    print("| round | s to spam | heap MB right after | heap MB after the window | RSS MB |")
    print("|---|---|---|---|---|")
    for row in rows:
        during = f"{row['heap_during_mb']:.1f}" if "heap_during_mb" in row else "-"
        print(
            f"| {int(row['round']) or 'before'} | {row['seconds']:.1f} | {during} "
            f"| {row['heap_mb']:.1f} | {row['rss_mb']:.1f} |"
        )


if __name__ == "__main__":
    main()
