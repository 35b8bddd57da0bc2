"""Load generator for the ChatSupport benchmarks (issue 8).

Drives one server on 127.0.0.1 (and nowhere else) through one wire format and
prints one JSON object with the result on stdout.

Wire formats (``--wire``) and dialects (``--dialect``):
  line                plain-text TCP lines; ``/join ROOM`` to change room
  ws  --dialect query WebSocket, room in ``/?room=NAME`` (Node ws, websockets, sink)
  ws  --dialect chatsupport
                      WebSocket at ``/ws``, a welcome frame first, everyone starts
                      in ``lobby``, ``join``/``leave`` frames to change room
  resp                Redis pub/sub: receivers SUBSCRIBE, publishers PUBLISH

Scenarios (``--scenario``):
  fanout   N receivers and P publishers in one room. Publisher i has one message
           in flight: it sends its next 64-byte message as soon as its designated
           receiver got the previous one. Designated receivers are spread evenly
           over the connection order (receiver ((i+1)*N)//P - 1), so no server
           gains from the order it walks its peers in. A message not seen within
           --stall seconds is written off and the next one sent (counted in
           ``stalls``). Result: deliveries/s counted over the N receivers only
           (publishers also drain what they receive, uncounted).
  latency  N receivers and P publishers in one room; messages are sent at a fixed
           total --rate (round robin over publishers, open loop); every receiver
           records now - send time of every message (the send time is in the text;
           one process, one clock). Result: p50/p99/max, and how many deliveries
           had not arrived --stall seconds (at least 2) after the last send.
  open100, open300
           one busy room as people make it: N receivers, 10 publishers (at most P),
           100 or 300 msg/s offered in all, open loop; 20 receivers spread over the
           connection order record latency, the rest only count. Result: p50/p99/max
           and server CPU per delivery.
  quiet    --rooms rooms of --per-room receivers and one sender each; messages at a
           total --rate, rooms in turn. Result: latency and server CPU.
  idle     --conns connections that say nothing. They stay in the room the server
           puts them in (ChatSupport's lobby); where the client picks its room (IRC,
           Redis, ``?room=``) they fill rooms of 100 (an IRC server tells a channel of
           every JOIN: one channel of 10,000 would be a join storm, not idle). Result:
           RSS growth of the server per connection (from /proc/PID/status of --server-pid).

Every run reports the generator's own CPU use and, given --server-pid, the
server's: a generator near 100% is the bottleneck, and the figure is then a
ceiling of the generator, not of the server.

    python bench/loadgen.py --wire line --port 7777 --scenario fanout -n 1000 -p 20

Several scenarios run one after the other (``--scenario idle,fanout``), one JSON
line each; exit status 0 when all of them went through.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import wire
from meter import Meter, percentiles, proc_status
from peers import IrcPeer, LinePeer, Peer, RespPeer, WsPeer

HOST = "127.0.0.1"  # the only address this tool ever connects to
CONNECT_CONCURRENCY = 200  # TCP connects under way at once
IN_FLIGHT = 2000  # connections connected but not yet ready (handshake, registration)
LOBBY = b"lobby"


@dataclass(slots=True)
class Options:
    wire: str
    dialect: str
    ports: list[int]
    scenarios: list[str]
    receivers: int = 1000
    publishers: int = 20
    duration: float = 5.0
    warmup: float = 1.0
    rate: float = 100.0
    rooms: int = 100
    per_room: int = 10
    conns: int = 10_000
    stall: float = 2.0
    connect_concurrency: int = CONNECT_CONCURRENCY
    in_flight: int = IN_FLIGHT
    settle: float = 1.0
    pause: float = 0.5
    timeout: float = 60.0
    server_pids: list[int] = field(default_factory=list)


# --- connecting --------------------------------------------------------------------


class Bench:
    """Connections of one run, and the steps scenarios are made of."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.peers: list[Peer] = []
        self.gate = asyncio.Semaphore(opts.connect_concurrency)
        self.in_flight = asyncio.Semaphore(opts.in_flight)
        self.errors: list[str] = []
        self.made = 0

    def make_peer(self, room: bytes, port: int, publisher: bool) -> Peer:
        o = self.opts
        if o.wire == "line":
            return LinePeer(LOBBY, publisher=publisher)
        if o.wire == "resp":
            return RespPeer(room, publisher=publisher)
        if o.wire == "irc":
            return IrcPeer(room, publisher=publisher)
        if o.dialect == "chatsupport":
            return WsPeer(LOBBY, port, "/ws", welcome=True, publisher=publisher)
        return WsPeer(room, port, "/?room=" + room.decode(), welcome=False, publisher=publisher)

    async def connect(self, room: bytes, publisher: bool = False) -> Peer:
        """One peer in ``room``; with several ports (nodes), peers take them in turn."""
        port = self.opts.ports[self.made % len(self.opts.ports)]
        self.made += 1
        peer = self.make_peer(room, port, publisher)
        loop = asyncio.get_running_loop()
        async with self.in_flight:
            async with self.gate:  # what the server's listen backlog holds
                await asyncio.wait_for(loop.create_connection(lambda: peer, HOST, port), 10)
            self.peers.append(peer)
            # the handshake or registration: a server may answer it on a timer (InspIRCd
            # completes registrations once a second), so many wait at once
            await asyncio.wait_for(peer.ready, max(10.0, self.opts.timeout / 3))
        if peer.room != room:
            peer.join(room)
        return peer

    async def connect_many(
        self,
        room: bytes,
        count: int,
        publisher: bool = False,
        limit: float | None = None,
        spread: int = 0,
    ) -> list[Peer]:
        """``count`` peers in ``room``; those not ready within ``limit`` seconds are dropped.
        With ``spread``, peer i goes to room ``ROOM-K``, K = i // spread (rooms of ``spread``)."""
        rooms = [room + b"-%d" % (i // spread) if spread else room for i in range(count)]
        tasks = [asyncio.ensure_future(self.connect(r, publisher)) for r in rooms]
        _done, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            self.errors.append(f"only {count - len(pending)} of {count} ready within {limit} s")
        failed = [t.exception() for t in tasks if not t.cancelled() and t.exception()]
        if failed:
            self.errors.append(f"{len(failed)} of {count} connections failed: {failed[0]!r}")
        return [t.result() for t in tasks if not t.cancelled() and not t.exception()]

    async def barrier(self, sender: Peer, receivers: Sequence[Peer], key: int) -> bool:
        """Probe until every receiver has seen a probe: all are in the room and caught up."""
        for peer in receivers:
            peer.watch_probes()

        def everyone() -> bool:
            return all(p.probe >= key * 1000 or p.closed for p in receivers)

        for attempt in range(1, max(1, int(self.opts.timeout / 2)) + 1):
            sender.say(wire.make_probe(key * 1000 + attempt))
            if await poll(everyone, 2.0):
                return True
        missing = sum(1 for p in receivers if p.probe < key * 1000)
        self.errors.append(f"barrier: {missing} receivers never saw a probe")
        return False

    def close(self) -> None:
        for peer in self.peers:
            peer.close()

    def disconnects(self) -> dict[str, int]:
        reasons: dict[str, int] = {}
        for peer in self.peers:
            if peer.closed:
                reasons[peer.close_reason[:80]] = reasons.get(peer.close_reason[:80], 0) + 1
        return reasons


# --- scenarios ---------------------------------------------------------------------


@dataclass(slots=True)
class Publisher:
    index: int
    peer: Peer
    designated: Peer | None = None
    seq: int = 0
    sent_at: int = 0
    running: bool = True
    stalls: int = 0

    def send_next(self) -> None:
        if not self.running or self.peer.closed:
            return
        self.seq += 1
        self.sent_at = time.perf_counter_ns()
        self.peer.say(wire.make_text(self.index, self.seq, self.sent_at))


async def fanout(bench: Bench) -> dict[str, Any]:
    o = bench.opts
    receivers = await bench.connect_many(LOBBY, o.receivers)
    senders = await bench.connect_many(LOBBY, o.publishers, publisher=True)
    if not receivers or not senders or not await bench.barrier(senders[0], receivers, 1):
        return {}
    pubs = [Publisher(i, peer) for i, peer in enumerate(senders)]
    rtts: list[int] = []
    for peer in receivers:
        peer.count_only()
    for pub in pubs:
        pub.designated = receivers[((pub.index + 1) * len(receivers)) // len(pubs) - 1]
        pub.designated.on_text = designated_handler(pub.designated, pubs, rtts)
    for peer in senders:
        peer.count_only()
    for pub in pubs:
        pub.send_next()
    watchdog = asyncio.ensure_future(unstall(pubs, o.stall, o.warmup + o.duration))
    await asyncio.sleep(o.warmup)
    before = sum(p.delivered() for p in receivers)
    reads_before = sum(p.reads for p in receivers)
    sent_before = sum(p.seq for p in pubs)
    del rtts[:]
    meter = Meter(o.server_pids)
    meter.start()
    await asyncio.sleep(o.duration)
    after = sum(p.delivered() for p in receivers)
    reads = sum(p.reads for p in receivers) - reads_before
    sent_after = sum(p.seq for p in pubs)
    wall = meter.stop()
    for pub in pubs:
        pub.running = False
    watchdog.cancel()
    rtt = percentiles(rtts)
    server_s = meter.result.get("server_cpu_pct", 0.0) * wall / 100
    return {
        "deliveries": after - before,
        "server_us_per_delivery": round(1e6 * server_s / max(1, after - before), 3),
        "deliveries_per_s": round((after - before) / wall),
        "messages_per_s": round((sent_after - sent_before) / wall, 1),
        "deliveries_per_read": round((after - before) / max(1, reads), 2),
        "rtt_p50_ms": rtt.get("lat_p50_ms"),
        "rtt_p99_ms": rtt.get("lat_p99_ms"),
        "stalls": sum(p.stalls for p in pubs),
        **meter.result,
    }


def designated_handler(
    me: Peer, pubs: Sequence[Publisher], rtts: list[int]
) -> Callable[[bytes, int], None]:
    def on_text(text: bytes, now: int) -> None:
        parsed = wire.parse_text(text)
        if parsed is None or parsed[0] >= len(pubs):
            return
        pub = pubs[parsed[0]]
        if pub.designated is me and parsed[1] == pub.seq:
            rtts.append(now - pub.sent_at)
            pub.send_next()

    return on_text


async def unstall(pubs: Sequence[Publisher], stall: float, seconds: float) -> None:
    """For ``seconds``: a publisher whose message was not seen for ``stall`` s sends the next."""
    limit = int(stall * 1e9)
    step = min(0.5, stall / 2)
    for _ in range(int(seconds / step) + 1):
        await asyncio.sleep(step)
        now = time.perf_counter_ns()
        for pub in pubs:
            if pub.running and now - pub.sent_at > limit:
                pub.stalls += 1
                pub.send_next()


class LatencyRecorder:
    """Parse-mode handler for all receivers: now - send time, for texts sent after ``since``."""

    def __init__(self) -> None:
        self.since = 1 << 62
        self.samples: list[int] = []

    def __call__(self, text: bytes, now: int) -> None:
        i = text.find(wire.MARK)  # every delivery comes here: parse only the send time
        if i >= 0:
            sent = int(text[i + wire.TS_FROM : i + wire.TS_TO])
            if sent >= self.since:
                self.samples.append(now - sent)


async def paced(senders: Sequence[Peer], rate: float, seconds: float) -> int:
    """Send at ``rate`` msg/s for ``seconds``, senders in turn; return how many were sent."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    total = max(1, int(rate * seconds))
    sent = 0
    for k in range(total):
        delay = start + k / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        peer = senders[k % len(senders)]
        if not peer.closed:
            peer.say(wire.make_text(k % 100_000, k, time.perf_counter_ns()))
            sent += 1
    return sent


async def measure_latency(
    bench: Bench,
    senders: Sequence[Peer],
    receivers: Sequence[Peer],
    per_message: int,
    rate: float | None = None,
    counted: Sequence[Peer] = (),
) -> dict[str, Any]:
    """Open loop: ``rate`` msg/s whatever the server does; ``receivers`` record latency,
    ``counted`` receivers only count (their deliveries enter the CPU-per-delivery figure)."""
    o = bench.opts
    rate = rate or o.rate
    recorder = LatencyRecorder()
    for peer in receivers:
        peer.on_text = recorder
    for peer in (*senders, *counted):
        peer.count_only()
    everyone = [*receivers, *counted]
    await paced(senders, rate, o.warmup)
    recorder.since = time.perf_counter_ns()
    before = sum(p.delivered() for p in everyone)
    meter = Meter(o.server_pids)
    meter.start()
    sent = await paced(senders, rate, o.duration)
    wall = meter.stop()
    expected = sent * per_message
    await poll(lambda: len(recorder.samples) >= expected, max(2.0, o.stall))
    after = sum(p.delivered() for p in everyone)
    server_s = meter.result.get("server_cpu_pct", 0.0) * wall / 100
    return {
        "messages_per_s": round(sent / o.duration, 1),
        "deliveries_per_s": round((after - before) / o.duration),
        "server_us_per_delivery": round(1e6 * server_s / max(1, after - before), 3),
        "undelivered": max(0, expected - len(recorder.samples)),
        **percentiles(recorder.samples),
        **meter.result,
    }


async def latency(bench: Bench) -> dict[str, Any]:
    o = bench.opts
    receivers = await bench.connect_many(LOBBY, o.receivers)
    senders = await bench.connect_many(LOBBY, o.publishers, publisher=True)
    if not receivers or not senders or not await bench.barrier(senders[0], receivers, 1):
        return {}
    return await measure_latency(bench, senders, receivers, len(receivers))


FEW_PUBLISHERS = 10
SAMPLED = 20


async def open_loop(bench: Bench, rate: float) -> dict[str, Any]:
    """One busy room as people make it: few publishers, one message at a time offered at
    ``rate`` msg/s in all (open loop, so little to coalesce), latency sampled at 20
    receivers spread over the connection order, the others only counted."""
    o = bench.opts
    receivers = await bench.connect_many(LOBBY, o.receivers)
    senders = await bench.connect_many(LOBBY, min(FEW_PUBLISHERS, o.publishers), publisher=True)
    if not receivers or not senders or not await bench.barrier(senders[0], receivers, 1):
        return {}
    step = max(1, len(receivers) // SAMPLED)
    sampled = receivers[step - 1 :: step][:SAMPLED]
    others = [p for p in receivers if p not in set(sampled)]
    result = await measure_latency(bench, senders, sampled, len(sampled), rate, others)
    return {"rate": rate, "publishers": len(senders), "sampled": len(sampled), **result}


async def open100(bench: Bench) -> dict[str, Any]:
    return await open_loop(bench, 100.0)


async def open300(bench: Bench) -> dict[str, Any]:
    return await open_loop(bench, 300.0)


async def quiet(bench: Bench) -> dict[str, Any]:
    o = bench.opts
    names = [b"q-%04d" % i for i in range(o.rooms)]
    receivers_by_room = await asyncio.gather(
        *(bench.connect_many(name, o.per_room) for name in names)
    )
    one_each = await asyncio.gather(*(bench.connect_many(name, 1, True) for name in names))
    senders = [s for room in one_each for s in room]
    if len(senders) < len(names):
        return {}
    synced = await asyncio.gather(
        *(bench.barrier(s, r, 1) for s, r in zip(senders, receivers_by_room, strict=True))
    )
    if not all(synced):
        return {}
    random.Random(8).shuffle(senders)  # rooms take turns in a fixed but unsorted order
    receivers = [p for room in receivers_by_room for p in room]
    return {"rooms": o.rooms, **await measure_latency(bench, senders, receivers, o.per_room)}


IDLE_ROOM = 100  # idle connections per room, where the client picks its room


def server_places(opts: Options) -> bool:
    """Whether the server puts a new connection in a room itself (ChatSupport's lobby)."""
    return opts.wire == "line" or opts.dialect == "chatsupport"


async def idle(bench: Bench) -> dict[str, Any]:
    """Idle connections stay in the room the server puts them in (ChatSupport: the lobby,
    silent about comings and goings past 100 people); where the client picks its room
    (IRC, Redis, ``?room=``), they fill rooms of 100. IRC announces every JOIN to the whole
    channel: 10,000 joining one channel would be 50 million JOIN lines while connecting,
    a join storm and not idle memory."""
    o = bench.opts
    if not o.server_pids:
        bench.errors.append("idle needs --server-pid")
        return {}
    room, spread = (LOBBY, 0) if server_places(o) else (b"idle", IDLE_ROOM)
    warm = await bench.connect_many(b"warm" if spread else LOBBY, 10)
    await settle(bench.peers, o.settle / 2, o.timeout)
    base = proc_status(o.server_pids, "VmRSS")
    t0 = time.perf_counter()
    peers = await bench.connect_many(room, o.conns, limit=o.timeout, spread=spread)
    connect_s = time.perf_counter() - t0
    for peer in (*warm, *peers):
        peer.count_only()
    quiet_s = await settle(bench.peers, o.settle, o.timeout / 2)
    if quiet_s >= o.timeout / 2:
        bench.errors.append(f"the server was still sending after {quiet_s:.0f} s of idling")
    rss = proc_status(o.server_pids, "VmRSS")
    open_conns = sum(1 for p in peers if not p.closed)
    return {
        "conns": open_conns,
        "connect_s": round(connect_s, 2),
        "settle_s": round(quiet_s, 2),
        "received_per_conn_bytes": round(sum(p.nbytes for p in peers) / max(1, len(peers))),
        "rss_base_kb": base,
        "rss_kb": rss,
        "rss_per_conn_bytes": round((rss - base) * 1024 / max(1, open_conns)),
        "server_threads": proc_status(o.server_pids, "Threads"),
    }


async def poll(condition: Callable[[], bool], limit: float, step: float = 0.02) -> bool:
    """Check ``condition`` every ``step`` seconds for at most ``limit`` seconds."""
    for _ in range(max(1, int(limit / step))):
        if condition():
            return True
        await asyncio.sleep(step)
    return condition()


async def settle(peers: Sequence[Peer], quiet_for: float, limit: float) -> float:
    """Wait until no peer received a byte for ``quiet_for`` seconds; return the time taken."""
    t0 = time.monotonic()
    last = -1
    quiet_since = t0
    while time.monotonic() - t0 < limit:
        await asyncio.sleep(0.1)
        total = sum(p.nbytes for p in peers)
        if total != last:
            last, quiet_since = total, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_for:
            break
    return time.monotonic() - t0


SCENARIOS = {
    "fanout": fanout,
    "latency": latency,
    "open100": open100,
    "open300": open300,
    "quiet": quiet,
    "idle": idle,
}


async def run(opts: Options, scenario: str) -> dict[str, Any]:
    bench = Bench(opts)
    t0 = time.perf_counter()
    try:
        result = await asyncio.wait_for(SCENARIOS[scenario](bench), opts.timeout * 3)
    except (TimeoutError, OSError) as exc:
        bench.errors.append(f"{type(exc).__name__}: {exc}")
        result = {}
    finally:
        reasons = bench.disconnects()
        bench.close()
    await asyncio.sleep(0)
    return {
        "scenario": scenario,
        "wire": opts.wire,
        "dialect": opts.dialect,
        "ok": bool(result) and not bench.errors,
        **result,
        "elapsed_s": round(time.perf_counter() - t0, 2),
        "disconnects": reasons,
        "errors": bench.errors,
    }


async def run_all(opts: Options) -> list[dict[str, Any]]:
    """The scenarios one after the other, with a pause for the server to settle."""
    results = []
    for i, scenario in enumerate(opts.scenarios):
        if i:
            await asyncio.sleep(opts.pause)
        result = await run(opts, scenario)
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        description="Load generator for the ChatSupport benchmarks (127.0.0.1 only).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--wire", choices=("line", "ws", "resp", "irc"), required=True)
    p.add_argument("--dialect", choices=("query", "chatsupport"), default="query")
    p.add_argument("--port", required=True, help="port, or ports of several nodes: 7777,7778")
    p.add_argument(
        "--connect-concurrency",
        type=int,
        default=CONNECT_CONCURRENCY,
        help="TCP connects under way at once (servers with a short listen backlog want less)",
    )
    p.add_argument(
        "--in-flight",
        type=int,
        default=IN_FLIGHT,
        help="connections connected and not yet ready (greeting, handshake, registration)",
    )
    p.add_argument("--scenario", default="fanout", help="one or more of: " + ",".join(SCENARIOS))
    p.add_argument("-n", "--receivers", type=int, default=1000)
    p.add_argument("-p", "--publishers", type=int, default=20)
    p.add_argument("-d", "--duration", type=float, default=5.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    p.add_argument("--rate", type=float, default=100.0, help="msg/s offered (latency, quiet)")
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--per-room", type=int, default=10)
    p.add_argument("--conns", type=int, default=10_000, help="idle connections")
    p.add_argument("--stall", type=float, default=2.0, help="seconds before a lost message")
    p.add_argument("--settle", type=float, default=1.0, help="idle: seconds without traffic")
    p.add_argument("--pause", type=float, default=0.5, help="seconds between scenarios")
    p.add_argument("--timeout", type=float, default=60.0, help="bound of each phase, seconds")
    p.add_argument("--server-pid", type=int, action="append", default=[], dest="server_pids")
    a = vars(p.parse_args(argv))
    try:
        a["ports"] = [int(x) for x in a.pop("port").split(",")]
    except ValueError:
        p.error("--port takes numbers: 7777 or 7777,7778")
    if not a["ports"] or not all(0 < x < 65536 for x in a["ports"]):
        p.error("--port must be ports of 127.0.0.1")
    a["scenarios"] = a.pop("scenario").split(",")
    if not set(a["scenarios"]) <= set(SCENARIOS):
        p.error(f"--scenario takes {', '.join(SCENARIOS)}")
    opts = Options(**a)
    opts.receivers = max(1, min(opts.receivers, 50_000))
    opts.publishers = max(1, min(opts.publishers, 1000))
    opts.conns = max(1, min(opts.conns, 50_000))
    opts.connect_concurrency = max(1, opts.connect_concurrency)
    opts.in_flight = max(opts.connect_concurrency, opts.in_flight)
    opts.duration = max(0.1, min(opts.duration, 600.0))
    opts.rate = max(0.1, min(opts.rate, 100_000.0))
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        results = asyncio.run(run_all(opts))
    else:
        results = uvloop.run(run_all(opts))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
