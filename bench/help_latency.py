"""How fast help reaches a person: a scenario benchmark (not a timed test).

Two figures, each as median and p99 over N rounds, on one node (memory broker) and on
two nodes sharing a redis-server this script starts on a spare port:

- crisis -> alert: a person says a crisis phrase; until a signed-in moderator receives
  `alert {kind: "crisis"}` (on two nodes: the person on node 2, the moderator on node 1);
- talk -> matched: a seeker sends `talk {}` while a listener is free; until the seeker
  receives `matched` (on two nodes: the seeker on node 2, the listener on node 1). The
  seeker then leaves the room, which frees the listener for the next round.

Servers run in this process, on 127.0.0.1, with the clients (real WebSockets): the
figures include the clients' own work on the same event loop. Targets (issue 11): alert
under 1 s, match under 0.5 s at p99.

    python bench/help_latency.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import websockets

from chatsupport import ChatServer
from chatsupport.config import Config
from chatsupport.core.roles import hash_line
from targets import BENCH_ADDRESS_KEY

MOD, LISTENER = "bench-mod-token", "bench-listener-token"
CRISIS = "i just want to die"
WAIT = 10.0


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, port: int, token: str | None = None) -> Client:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None)
        client = cls(ws)
        await client.until("welcome")
        if token:
            await client.send({"type": "auth", "token": token})
            await client.until("notice", kind="auth")
        return client

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def until(self, frame_type: str, **fields: Any) -> dict[str, Any]:
        for _ in range(10_000):
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
            if frame["type"] == frame_type and all(frame.get(k) == v for k, v in fields.items()):
                return dict(frame)
        raise RuntimeError(f"no {frame_type} frame")

    async def close(self) -> None:
        await self.ws.close()


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def redis() -> AsyncIterator[str]:
    """A redis-server of our own (no persistence), stopped by its PID afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = spare_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


@asynccontextmanager
async def nodes(count: int, broker: str, tokens: str) -> AsyncIterator[list[ChatServer]]:
    servers = []
    config = Config(
        host="127.0.0.1",
        http_port=0,
        tcp_port=0,
        irc_port=0,
        broker=broker,
        tokens_file=tokens,
        msg_rate=1000.0,
        msg_burst=1000.0,
        probation_seconds=0.0,
        crisis_repeat_seconds=0.0,  # an alert for every round
        talk_requests=100_000,
        new_conns_per_address=100_000,
        max_conns_per_address=100_000,
        log_level="WARNING",
        address_key=BENCH_ADDRESS_KEY,  # nodes on Redis must share one (a bench keeps no secret)
    )
    try:
        for _ in range(count):
            server = ChatServer(config.replace())
            await server.start()
            servers.append(server)
        yield servers
    finally:
        for server in servers:
            await server.stop()


async def crisis_to_alert(
    staff_node: ChatServer, person_node: ChatServer, rounds: int
) -> list[float]:
    mod = await Client.open(staff_node.http_port, MOD)
    person = await Client.open(person_node.http_port)
    took = []
    for n in range(rounds):
        start = time.perf_counter()
        await person.send({"type": "say", "room": "lobby", "text": f"{CRISIS} ({n})"})
        await mod.until("alert", kind="crisis")
        took.append(time.perf_counter() - start)
    await mod.close()
    await person.close()
    return took


async def talk_to_matched(
    listener_node: ChatServer, seeker_node: ChatServer, rounds: int
) -> list[float]:
    listener = await Client.open(listener_node.http_port, LISTENER)
    await listener.send({"type": "listen", "on": True})
    await listener.until("notice", kind="listen")
    seeker = await Client.open(seeker_node.http_port)
    took = []
    for _ in range(rounds):
        start = time.perf_counter()
        await seeker.send({"type": "talk"})
        matched = await seeker.until("matched")
        took.append(time.perf_counter() - start)
        await listener.until("matched")
        await seeker.send({"type": "leave", "room": matched["room"]})
        await seeker.until("left")
        await listener.until("ended")
    await listener.close()
    await seeker.close()
    return took


def summary(took: list[float]) -> tuple[float, float]:
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        tokens = Path(directory) / "tokens"
        tokens.write_text(f"{hash_line('mod', MOD)}\n{hash_line('listener', LISTENER)}\n")
        rows = []
        async with nodes(1, "memory", str(tokens)) as (one,):
            rows.append(
                ("one node (memory)", "crisis -> alert", await crisis_to_alert(one, one, rounds))
            )
            rows.append(
                ("one node (memory)", "talk -> matched", await talk_to_matched(one, one, rounds))
            )
        async with redis() as url, nodes(2, url, str(tokens)) as (first, second):
            rows.append(
                (
                    "two nodes (Redis)",
                    "crisis -> alert",
                    await crisis_to_alert(first, second, rounds),
                )
            )
            rows.append(
                (
                    "two nodes (Redis)",
                    "talk -> matched",
                    await talk_to_matched(first, second, rounds),
                )
            )
    print("| setup | scenario | rounds | median ms | p99 ms |\n|---|---|---:|---:|---:|")
    for setup, scenario, took in rows:
        median, p99 = summary(took)
        print(f"| {setup} | {scenario} | {len(took)} | {median:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds per scenario")
    asyncio.run(main(parser.parse_args().rounds))
