"""A soak: text and WebSocket peers talking through two nodes on one Redis for N minutes,
with node faults (SIGKILL then a restart, SIGSTOP then SIGCONT past the lease) and Redis
faults (SIGSTOP then SIGCONT, a restart that loses everything) at random, seeded times.

    python bench/soak.py                       # 3 minutes, seed 1
    python bench/soak.py --minutes 0.33 --seed 7 --ws 8 --text 4 --json out.json

What every peer saw is checked, per room, by message id: a *gap* is an id the room
accepted that a peer did not get although it got ids before and after it without a break
(a WebSocket peer's span goes on through a resume that says `complete: true`; a text
peer's ends with its connection), a *duplicate* an id got twice in one span, a
*reordering* an id lower than one got before it. Text lines carry no id: their
`soak <peer> <n>` text is matched to the id WebSocket peers saw for it. Resume outcomes are
counted, and each node's resident memory is sampled before the load (idle), during it,
and after it (everyone gone: WebSocket peers `forget`, so no session waits for a resume).

Loopback only; every loop is bounded in count and time; every process (two nodes and a
redis-server of its own) is stopped by its PID. Exit status 0 when there was no gap,
duplicate or reordering and every node's memory came back to its level before the load.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

import meter
from targets import BENCH, CHATSUPPORT_FLAGS, REPO, Env, Process

SOAK_KEY = "soak-address-key-" + "0" * 32  # a soak keeps no secrets
LEASE = 3.0  # seconds: a node stalled longer is reaped (its people are shown as gone)
SAMPLE_EVERY = 2.0  # seconds between memory samples
IDLE = 4.0  # seconds of samples before the load
MEMORY_SLACK_KB = 8 * 1024  # what "back to its level" allows: allocator arenas kept, caches
MAX_CONNECTS = 1000  # per peer: reconnecting is bounded too
TEXT = re.compile(r"soak (\S+) (\d+)$")
Span = list[int]


# ---- processes ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """A redis-server on a fixed port (so it can restart under the same URL) and two nodes;
    each started, signalled and stopped by its PID."""

    env: Env
    redis_port: int = field(default_factory=free_port)
    redis: Process | None = None
    nodes: list[Process | None] = field(default_factory=lambda: [None, None])
    ports: list[dict[str, int]] = field(default_factory=lambda: [{}, {}])
    stalled: set[int] = field(default_factory=set)  # node slots under SIGSTOP
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0?prefix=soak:&lease={LEASE:g}"

    def start_redis(self) -> None:
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        self.redis = Process(argv, self.env, f"soak-redis-{self.starts}", {})
        self.starts += 1
        for _ in range(200):  # 10 s
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    def start_node(self, slot: int) -> None:
        argv = [self.env.python, "-m", "chatsupport", "serve", *CHATSUPPORT_FLAGS]
        argv += ["--broker", self.url, "--log-level", "warning"]
        argv += ["--irc-port", "0"]  # two nodes on one machine: never both on 6667
        extra = {"PYTHONPATH": str(self.env.src), "CHATSUPPORT_ADDRESS_KEY": SOAK_KEY}
        process = Process(argv, self.env, f"soak-node{slot}-{self.starts}", extra)
        self.starts += 1
        self.ports[slot] = process.ports(2)
        self.nodes[slot] = process

    def pid(self, slot: int) -> int | None:
        node = self.nodes[slot]
        return node.pid if node is not None and node.proc.poll() is None else None

    def port(self, scheme: str, rng: random.Random) -> int:
        """A node to connect to: a running one, at random (a stalled one accepts and hangs,
        as a real one would)."""
        running = [s for s in (0, 1) if self.pid(s) is not None and self.ports[s]]
        return self.ports[rng.choice(running or [0])].get(scheme, 1)

    def signal_node(self, slot: int, signum: int) -> None:
        node = self.nodes[slot]
        if node is not None and node.proc.poll() is None:
            os.kill(node.pid, signum)

    def stop(self) -> None:
        for slot in (0, 1):
            self.signal_node(slot, signal.SIGCONT)
            node = self.nodes[slot]
            if node is not None:
                node.stop()
        if self.redis is not None:
            if self.redis.proc.poll() is None:
                os.kill(self.redis.pid, signal.SIGCONT)
            self.redis.stop()


# ---- faults ---------------------------------------------------------------------------------
@dataclass
class Faults:
    cluster: Cluster
    rng: random.Random
    log: list[tuple[float, str]] = field(default_factory=list)
    redis_restarts: list[float] = field(default_factory=list)

    async def run(self, start: float, until: float) -> None:
        """One fault at a time, each after a random pause, until `until` (monotonic)."""
        kinds: list[Callable[[], Awaitable[str]]] = [
            self.kill_node,
            self.stall_node,
            self.stall_redis,
            self.restart_redis,
        ]
        for _ in range(1000):
            pause = self.rng.uniform(8.0, 20.0)
            if time.monotonic() + pause >= until:
                return
            await asyncio.sleep(pause)
            fault = kinds[self.rng.randrange(len(kinds))]
            what = await fault()
            self.log.append((round(time.monotonic() - start, 1), what))

    async def kill_node(self) -> str:
        slot = self.rng.randrange(2)
        self.cluster.signal_node(slot, signal.SIGKILL)
        node = self.cluster.nodes[slot]
        if node is not None:
            await asyncio.to_thread(node.proc.wait, 10)
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        await asyncio.to_thread(self.cluster.start_node, slot)
        return f"node {slot + 1}: SIGKILL, restarted"

    async def stall_node(self) -> str:
        slot = self.rng.randrange(2)
        seconds = self.rng.uniform(1.5 * LEASE, 3 * LEASE)  # past the lease: reaped
        self.cluster.signal_node(slot, signal.SIGSTOP)
        self.cluster.stalled.add(slot)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.cluster.signal_node(slot, signal.SIGCONT)
            self.cluster.stalled.discard(slot)
        return f"node {slot + 1}: SIGSTOP {seconds:.1f} s, SIGCONT"

    async def stall_redis(self) -> str:
        redis = self.cluster.redis
        seconds = self.rng.uniform(1.0, 5.0)
        if redis is None:
            return "redis: none"
        os.kill(redis.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(redis.pid, signal.SIGCONT)
        return f"redis: SIGSTOP {seconds:.1f} s, SIGCONT"

    async def restart_redis(self) -> str:
        redis = self.cluster.redis
        if redis is not None:
            await asyncio.to_thread(redis.stop)
        self.redis_restarts.append(time.monotonic())
        await asyncio.sleep(self.rng.uniform(0.5, 2.0))
        await asyncio.to_thread(self.cluster.start_redis)
        return "redis: restarted (everything it held is lost)"


# ---- what the peers saw ---------------------------------------------------------------------
@dataclass
class Seen:
    """Everything observed, for the checks at the end."""

    ids: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (room, peer, n) -> id
    first_seen: dict[tuple[str, int], float] = field(default_factory=dict)  # (room, id) -> when
    author: dict[tuple[str, int], str] = field(default_factory=dict)  # (room, id) -> peer
    ws_spans: list[tuple[str, str, Span]] = field(default_factory=list)  # (peer, room, ids)
    text_spans: list[tuple[str, str, list[tuple[str, int]]]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def message(self, room: str, id_: int, text: str) -> None:
        key = (room, id_)
        self.first_seen.setdefault(key, time.monotonic())
        matched = TEXT.match(text)
        if matched:
            peer, n = matched[1], int(matched[2])
            self.ids[(room, peer, n)] = id_
            self.author[key] = peer


@dataclass
class Peer:
    """What both kinds of peer share: a name, a room, a pace, a deadline."""

    seen: Seen
    cluster: Cluster
    name: str
    room: str
    rng: random.Random
    every: float  # mean seconds between two messages
    sent: int = 0

    def text(self) -> str:
        self.sent += 1
        return f"soak {self.name} {self.sent}"

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.expovariate(1.0 / self.every))

    async def run(self, until: float) -> None:
        for _ in range(MAX_CONNECTS):
            if time.monotonic() >= until:
                return
            try:
                async with asyncio.timeout(max(0.1, until - time.monotonic()) + 10.0):
                    await self.connection(until)
            except (OSError, TimeoutError, WebSocketException, asyncio.IncompleteReadError):
                self.seen.counts["connections lost"] += 1
            except ConnectionError:
                self.seen.counts["connections lost"] += 1
            if time.monotonic() < until:
                await asyncio.sleep(self.rng.uniform(0.2, 1.0))

    async def connection(self, until: float) -> None:
        raise NotImplementedError


class WsPeer(Peer):
    """A WebSocket peer that resumes first (`/ws?resume=1`) whenever it can."""

    session: str | None = None
    uid: str = ""
    last: int = 0  # the newest id seen in its room
    span: Span

    async def connection(self, until: float) -> None:
        port = self.cluster.port("http", self.rng)
        path = "/ws?resume=1" if self.session else "/ws"
        async with connect(
            f"ws://127.0.0.1:{port}{path}", open_timeout=10, close_timeout=2, max_size=1 << 22
        ) as ws:
            if self.session:
                await self.resume(ws)
            else:
                await self.start(ws)
            await self.talk(ws, until)
            if time.monotonic() >= until:  # done: end the session, nothing left to resume
                await ws.send(json.dumps({"type": "forget"}))
                async with asyncio.timeout(5):
                    async for _ in ws:
                        pass

    async def frames(
        self, ws: ClientConnection, until: Callable[[dict[str, Any]], bool]
    ) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            for _ in range(100_000):
                frame = json.loads(await ws.recv())
                got.append(frame)
                if until(frame):
                    return got
        raise TimeoutError

    async def start(self, ws: ClientConnection) -> None:
        welcome = (await self.frames(ws, lambda f: f["type"] == "welcome"))[-1]
        await self.start_as(ws, welcome)

    async def resume(self, ws: ClientConnection) -> None:
        await ws.send(
            json.dumps({"type": "resume", "session": self.session, "last": {self.room: self.last}})
        )
        frames = await self.frames(ws, lambda f: f["type"] == "resumed")
        welcome = next(f for f in frames if f["type"] == "welcome")
        replayed = [f for f in frames if f["type"] == "message" and f["room"] == self.room]
        complete = frames[-1]["complete"]
        if welcome["uid"] != self.uid:  # forgotten (its node died with Redis, or expired)
            self.seen.counts["resume: unknown, a new person"] += 1
            self.session, self.uid = None, ""
            await self.start_as(ws, welcome)
            return
        self.seen.counts[f"resume: complete {str(complete).lower()}"] += 1
        if not complete:  # what was dropped is not a gap: a new span starts
            self.span = []
            self.seen.ws_spans.append((self.name, self.room, self.span))
        for frame in replayed:
            self.got(frame)

    async def start_as(self, ws: ClientConnection, welcome: dict[str, Any]) -> None:
        """A new person (no session yet, or the old one forgotten): into the room, a new span."""
        self.session, self.uid = welcome["session"], welcome["uid"]
        await ws.send(json.dumps({"type": "join", "room": self.room}))
        frames = await self.frames(ws, lambda f: f["type"] == "joined" and f["room"] == self.room)
        self.last = frames[-1]["last"]
        self.span = []
        self.seen.ws_spans.append((self.name, self.room, self.span))

    def got(self, frame: dict[str, Any]) -> None:
        id_ = int(frame["id"])
        self.span.append(id_)
        self.last = max(self.last, id_)
        self.seen.message(self.room, id_, frame.get("text", ""))

    async def talk(self, ws: ClientConnection, until: float) -> None:
        async def read() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "message" and frame["room"] == self.room:
                    self.got(frame)
                    if frame.get("ref"):
                        self.seen.counts["accepted"] += 1
                elif kind == "error" and frame.get("ref"):
                    self.seen.counts[f"refused: {frame['code']}"] += 1
                elif kind == "bye":
                    self.seen.counts[f"bye: {frame['reason']}"] += 1

        async def write() -> None:
            while time.monotonic() < until:
                await self.pause()
                if time.monotonic() >= until:
                    return
                frame = {
                    "type": "say",
                    "room": self.room,
                    "text": self.text(),
                    "ref": str(self.sent),
                }
                await ws.send(json.dumps(frame))

        await race(read(), write())


class TextPeer(Peer):
    """A text-interface peer: no resume, so each connection is a span of its own."""

    async def connection(self, until: float) -> None:
        port = self.cluster.port("tcp", self.rng)
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
        try:
            async with asyncio.timeout(30):
                for _ in range(1000):
                    if (await reader.readline()).startswith(b"*** Welcome"):
                        break
                writer.write(f"/join {self.room}\n".encode())
                for _ in range(1000):
                    if (await reader.readline()).startswith(f"-- you are in #{self.room}".encode()):
                        break
            span: list[tuple[str, int]] = []
            self.seen.text_spans.append((self.name, self.room, span))
            await race(self.read(reader, span), self.write(writer, until))
        finally:
            writer.close()

    async def read(self, reader: asyncio.StreamReader, span: list[tuple[str, int]]) -> None:
        for _ in range(10_000_000):
            line = await reader.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\n")
            if text.startswith("<"):
                matched = TEXT.search(text)
                if matched:
                    span.append((matched[1], int(matched[2])))
            elif text.startswith("!!"):
                self.seen.counts["refused (text)"] += 1

    async def write(self, writer: asyncio.StreamWriter, until: float) -> None:
        while time.monotonic() < until:
            await self.pause()
            if time.monotonic() < until:
                writer.write((self.text() + "\n").encode())
                await writer.drain()


async def race(*work: Awaitable[None]) -> None:
    """Run these until the first ends (a closed connection, or time's up); cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ---- the checks -----------------------------------------------------------------------------
@dataclass
class Verdict:
    gaps: list[tuple[str, str, int]] = field(default_factory=list)  # (peer, room, id)
    gaps_at_redis_restart: int = 0
    duplicates: int = 0
    reorderings: int = 0
    unmatched_text: int = 0
    spans: int = 0


def check(seen: Seen, redis_restarts: list[float]) -> Verdict:
    verdict = Verdict()
    accepted: dict[str, set[int]] = {}
    for room, id_ in seen.first_seen:
        accepted.setdefault(room, set()).add(id_)
    spans: list[tuple[str, str, Span]] = list(seen.ws_spans)
    for peer, room, lines in seen.text_spans:
        ids = [seen.ids.get((room, author, n)) for author, n in lines]
        verdict.unmatched_text += sum(1 for i in ids if i is None)
        spans.append((peer, room, [i for i in ids if i is not None]))
    for peer, room, span in spans:
        if not span:
            continue
        verdict.spans += 1
        verdict.duplicates += len(span) - len(set(span))
        verdict.reorderings += sum(1 for a, b in itertools.pairwise(span) if b < a)
        got = set(span)
        for id_ in sorted(accepted.get(room, set())):
            if min(got) < id_ < max(got) and id_ not in got:
                if peer.startswith("t") and seen.author.get((room, id_)) == peer:
                    continue  # the text interface does not echo one's own lines
                when = seen.first_seen[(room, id_)]
                if any(abs(when - t) < 5.0 for t in redis_restarts):
                    verdict.gaps_at_redis_restart += 1
                verdict.gaps.append((peer, room, id_))
    return verdict


# ---- memory ---------------------------------------------------------------------------------
@dataclass
class Memory:
    cluster: Cluster
    phase: str = "before"
    samples: dict[str, list[list[int]]] = field(
        default_factory=lambda: {"before": [[], []], "during": [[], []], "after": [[], []]}
    )

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY)

    def sample(self) -> None:
        for slot in (0, 1):
            pid = self.cluster.pid(slot)
            if pid is not None and slot not in self.cluster.stalled:
                self.samples[self.phase][slot].append(meter.proc_status([pid], "VmRSS"))

    def summary(self) -> list[dict[str, int]]:
        out = []
        for slot in (0, 1):
            before = self.samples["before"][slot]
            during = self.samples["during"][slot]
            after = self.samples["after"][slot]
            out.append(
                {
                    "before_kb": min(before) if before else 0,
                    "during_max_kb": max(during) if during else 0,
                    "after_kb": after[-1] if after else 0,
                }
            )
        return out


def back_to_level(node: dict[str, int]) -> bool:
    return node["after_kb"] <= node["before_kb"] + MEMORY_SLACK_KB


# ---- the run --------------------------------------------------------------------------------
async def soak(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    env = Env(src=REPO / "src", logs=BENCH / "results" / "soak", server_cpu=None)
    cluster = Cluster(env)
    seen = Seen()
    memory = Memory(cluster)
    faults = Faults(cluster, random.Random(rng.random()))
    load = [os.getloadavg()[0]]
    try:
        cluster.start_redis()
        for slot in (0, 1):
            cluster.start_node(slot)
        await memory.run(time.monotonic() + IDLE)  # before: idle, fresh
        memory.phase = "during"
        start = time.monotonic()
        until = start + args.minutes * 60
        rooms = [f"soak{r}" for r in range(args.rooms)]
        peers: list[Peer] = []
        for kind, prefix, count in ((WsPeer, "w", args.ws), (TextPeer, "t", args.text)):
            for i in range(count):
                room, pace = rooms[i % len(rooms)], random.Random(rng.random())
                peers.append(kind(seen, cluster, f"{prefix}{i}", room, pace, args.every))
        work = [asyncio.ensure_future(p.run(until)) for p in peers]
        sampler = asyncio.ensure_future(memory.run(until + 30))
        await faults.run(start, until - 10.0)  # the last seconds without a fault: all settle
        await asyncio.wait(work, timeout=until - time.monotonic() + 60)
        for task in work:
            task.cancel()
        await asyncio.gather(*work, return_exceptions=True)
        load.append(os.getloadavg()[0])
        memory.phase = "after"
        await asyncio.sleep(args.settle)
        memory.sample()
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    finally:
        await asyncio.to_thread(cluster.stop)
    verdict = check(seen, faults.redis_restarts)
    nodes = memory.summary()
    return {
        "minutes": args.minutes,
        "seed": args.seed,
        "peers": {"ws": args.ws, "text": args.text, "rooms": args.rooms, "every_s": args.every},
        "load_average": load,
        "faults": faults.log,
        "messages_seen": len(seen.first_seen),
        "checked_spans": verdict.spans,
        "gaps": len(verdict.gaps),
        "gaps_at_redis_restart": verdict.gaps_at_redis_restart,
        "gap_examples": verdict.gaps[:10],
        "duplicates": verdict.duplicates,
        "reorderings": verdict.reorderings,
        "text_lines_unmatched": verdict.unmatched_text,
        "counts": dict(sorted(seen.counts.items())),
        "memory": nodes,
        "memory_back": all(back_to_level(n) for n in nodes),
    }


def report(result: dict[str, Any]) -> str:
    lines = [
        f"soak: {result['minutes']} min, seed {result['seed']}, {result['peers']}",
        f"load average (1 min) at start / end: {result['load_average']}",
        "faults:",
        *(f"  {t:7.1f} s  {what}" for t, what in result["faults"]),
        f"messages seen: {result['messages_seen']} in {result['checked_spans']} spans",
        f"gaps: {result['gaps']} ({result['gaps_at_redis_restart']} within 5 s of a Redis "
        f"restart), duplicates: {result['duplicates']}, reorderings: {result['reorderings']}",
        f"text lines not matched to an id: {result['text_lines_unmatched']}",
        "counts:",
        *(f"  {k}: {v}" for k, v in result["counts"].items()),
        "memory per node (RSS, KiB): before (idle) / during (max) / after",
    ]
    for slot, node in enumerate(result["memory"], 1):
        lines.append(
            f"  node {slot}: {node['before_kb']} / {node['during_max_kb']} / {node['after_kb']}"
            f"  {'back' if back_to_level(node) else 'NOT back'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ws", type=int, default=24, help="WebSocket peers")
    parser.add_argument("--text", type=int, default=12, help="text-interface peers")
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument(
        "--every", type=float, default=2.0, help="mean seconds between a peer's messages"
    )
    parser.add_argument(
        "--settle", type=float, default=20.0, help="seconds after the load before the last sample"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.ws < args.rooms:
        parser.error("--ws must be at least --rooms: text lines are matched to ids through them")
    result = asyncio.run(soak(args))
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    clean = not (result["gaps"] or result["duplicates"] or result["reorderings"])
    return 0 if clean and result["memory_back"] else 1


if __name__ == "__main__":
    sys.exit(main())
