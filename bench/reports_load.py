"""Reports under load (issue 19): do reports sent at the budget hurt anyone else?

Two `chatsupport serve` nodes share one redis-server (all three started here, on 127.0.0.1,
and stopped by PID). 1,000 reports are stored first (filed through the broker, as many
reporters would). Then, on node B, a probe says one line every 100 ms in a quiet room and
times its own echo (publish -> Redis -> back): "before" for --seconds, and "during" for as
long while 16 connections on node A (one network address, as in the issue) each send one
report a second about a troll's message (the first 20 an hour do the work and are merged
or refused as repeats; the rest are refused by the budget). A moderator on node A lists a
page of reports during the load, timed. CPU of each process comes from /proc.

    python bench/reports_load.py --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from chatsupport.broker import make_broker  # noqa: E402
from chatsupport.core.ports import FiledReport  # noqa: E402
from chatsupport.core.roles import hash_line  # noqa: E402
from meter import proc_cpu_seconds  # noqa: E402

MOD_TOKEN = "bench-mod-token-3c1f"
ADDRESS_KEY = "bench-address-key-" + "0" * 32  # every node and the seeder agree; no secrets kept
REPORTERS = 16
STORED = 1000


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(port: int, workdir: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on the PATH")
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [binary, *args, "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def start_node(redis_port: int, tokens: str, log: Path) -> tuple[subprocess.Popen[str], int]:
    args = ["--host", "127.0.0.1", "--tcp-port", "0", "--http-port", "0", "--irc-port", "0"]
    args += ["--tokens-file", tokens]
    args += ["--broker", f"redis://127.0.0.1:{redis_port}/0", "--log-level", "WARNING"]
    args += ["--max-conns-per-address", "1000", "--new-conns-per-address", "100000"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CHATSUPPORT_ADDRESS_KEY": ADDRESS_KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatsupport", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    http = 0
    for _ in range(2):
        line = proc.stdout.readline()
        if line.startswith("listening on http"):
            http = int(line.rsplit(":", 1)[1])
    if not http:
        proc.kill()
        raise SystemExit(f"a node did not start (see {log})")
    return proc, http


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


async def seed(redis_port: int) -> None:
    """1,000 open reports about 1,000 people, by as many reporters, with evidence."""
    broker = make_broker(
        f"redis://127.0.0.1:{redis_port}/0",
        retention_seconds=600.0,
        retention_messages=500,
        wallclock=time.time,
        secret=ADDRESS_KEY.encode(),
    )
    await broker.start(lambda *_: None, lambda *_: None)
    try:
        for n in range(STORED):
            evidence = [
                {"type": "message", "id": i, "room": "lobby", "uid": f"u{n}", "name": "Someone"}
                | {"role": None, "kind": "say", "text": "x" * 120, "ts": time.time()}
                for i in range(6)
            ]
            event: dict[str, Any] = {"type": "report", "id": f"rs{n:04d}", "uid": f"u{n}"}
            event |= {"reporter": f"reporter-{n:08x}", "name": "Someone", "room": "lobby"}
            event |= {"reason": "seeded", "evidence": evidence, "ts": time.time()}
            filed = FiledReport(
                f"rs{n:04d}", "lobby", f"reporter-{n:08x}", f"u{n}", json.dumps(event)
            )
            await broker.file_report(filed, 86400.0, STORED, 5)
    finally:
        await broker.stop()


async def opened(port: int) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{port}/ws", max_size=1 << 24)
    while json.loads(await ws.recv())["type"] != "joined":
        pass
    return ws


async def reply(ws: ClientConnection, ref: str, kind: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30.0))
        if frame.get("ref") == ref and frame["type"] in (kind, "error"):
            return frame


async def probe(port: int, seconds: float) -> list[float]:
    """Echo times (ms) of one line every 100 ms in a quiet room."""
    ws = await opened(port)
    await ws.send(json.dumps({"type": "join", "room": "quiet", "ref": "j"}))
    await reply(ws, "j", "joined")
    times = []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        began = time.perf_counter()
        await ws.send(json.dumps({"type": "say", "room": "quiet", "text": "tick", "ref": f"t{n}"}))
        await reply(ws, f"t{n}", "message")
        times.append((time.perf_counter() - began) * 1000)
        await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - began)))
    await ws.close()
    return times


async def reporter(port: int, message_id: int, seconds: float, outcomes: dict[str, int]) -> None:
    ws = await opened(port)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        frame = {"type": "report", "id": message_id, "room": "lobby", "reason": "junk"}
        await ws.send(json.dumps({**frame, "ref": f"r{n}"}))
        answer = await reply(ws, f"r{n}", "notice")
        key = answer.get("code") or "accepted"
        outcomes[key] = outcomes.get(key, 0) + 1
        await asyncio.sleep(1.0)
    await ws.close()


async def mod_page(port: int) -> tuple[float, int, int]:
    """(ms, reports shown, bytes) for one `reports` page on node A."""
    ws = await opened(port)
    await ws.send(json.dumps({"type": "auth", "token": MOD_TOKEN, "ref": "a"}))
    await reply(ws, "a", "notice")
    began = time.perf_counter()
    await ws.send(json.dumps({"type": "reports", "ref": "list"}))
    shown, size = 0, 0
    while True:
        raw = await asyncio.wait_for(ws.recv(), 30.0)
        frame = json.loads(raw)
        if frame.get("ref") != "list":
            continue
        size += len(raw)
        if frame["type"] == "report":
            shown += 1
        else:
            break
    took = (time.perf_counter() - began) * 1000
    await ws.close()
    return took, shown, size


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }


async def measured(pids: list[int], work: Any) -> tuple[Any, list[float], float]:
    """Run `work`; its result, each pid's CPU % over it, and how long it took."""
    cpu = [proc_cpu_seconds([pid]) for pid in pids]
    began = time.monotonic()
    result = await work
    took = time.monotonic() - began
    used = [(proc_cpu_seconds([pid]) - c) / took * 100 for pid, c in zip(pids, cpu, strict=True)]
    return result, used, took


def prepare() -> tuple[str, Path]:
    """A scratch directory, and a tokens file with the moderator's token in it."""
    workdir = tempfile.mkdtemp(prefix="chatsupport-reports-load-")
    tokens = Path(workdir, "tokens")
    tokens.write_text(hash_line("mod", MOD_TOKEN) + "\n")
    return workdir, tokens


async def main(seconds: float) -> None:
    workdir, tokens = prepare()
    redis_port = free_port()
    redis = start_redis(redis_port, workdir)
    nodes: list[subprocess.Popen[str]] = []
    try:
        await seed(redis_port)
        node_a, port_a = start_node(redis_port, str(tokens), Path(workdir, "a.log"))
        nodes.append(node_a)
        node_b, port_b = start_node(redis_port, str(tokens), Path(workdir, "b.log"))
        nodes.append(node_b)
        pids = [node_a.pid, node_b.pid, redis.pid]

        before, cpu_before, _ = await measured(pids, probe(port_b, seconds))
        page_idle = await mod_page(port_a)

        troll = await opened(port_a)
        await troll.send(json.dumps({"type": "say", "room": "lobby", "text": "bad", "ref": "s"}))
        said = await reply(troll, "s", "message")
        outcomes: dict[str, int] = {}
        load = asyncio.gather(
            *(reporter(port_a, said["id"], seconds, outcomes) for _ in range(REPORTERS)),
            probe(port_b, seconds),
            mod_page_later(port_a, seconds / 2),
        )
        results, cpu_during, _ = await measured(pids, load)
        during, page_busy = results[-2], results[-1]
        await troll.close()
    finally:
        for proc in nodes:
            stop(proc)
        stop(redis)
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(before, during, cpu_before, cpu_during, page_idle, page_busy, outcomes)


async def mod_page_later(port: int, delay: float) -> tuple[float, int, int]:
    await asyncio.sleep(delay)
    return await mod_page(port)


def print_table(
    before: list[float],
    during: list[float],
    cpu_before: list[float],
    cpu_during: list[float],
    page_idle: tuple[float, int, int],
    page_busy: tuple[float, int, int],
    outcomes: dict[str, int],
) -> None:
    print(f"{STORED:,} reports stored; {REPORTERS} reporters on node A, one attempt a second")
    print(f"report attempts: {json.dumps(outcomes, sort_keys=True)}")
    print()
    print(
        "| phase | probes | echo p50 ms | p99 ms | max ms | node A CPU % | node B CPU % "
        "| Redis CPU % | a moderator's page |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, times, cpu, page in (
        ("before", before, cpu_before, page_idle),
        ("during", during, cpu_during, page_busy),
    ):
        s = summary(times)
        print(
            f"| {name} | {s['n']} | {s['p50']:.1f} | {s['p99']:.1f} | {s['max']:.1f} "
            f"| {cpu[0]:.0f} | {cpu[1]:.0f} | {cpu[2]:.0f} "
            f"| {page[1]} reports, {page[2] / 1024:.0f} KB in {page[0]:.0f} ms |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="each phase")
    asyncio.run(main(parser.parse_args().seconds))
