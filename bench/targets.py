"""The servers the benchmarks run side by side, and how to start and stop them.

Every server is a subprocess bound to 127.0.0.1, optionally pinned to one core
with ``taskset``; its port is read from the ``listening on SCHEME://127.0.0.1:PORT``
line it prints (Redis, which prints no such line, gets a free port and a PING).
Servers are stopped by PID: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LISTENING = re.compile(rb"listening on (\w+)://127\.0\.0\.1:(\d+)")
SINK_COPIES = 50
CHATSUPPORT_FLAGS = (
    *("--host", "127.0.0.1", "--tcp-port", "0", "--http-port", "0"),
    *("--msg-rate", "1000000", "--msg-burst", "1000000"),
    *("--max-conns-per-address", "100000", "--new-conns-per-address", "1000000"),
)
ALL = ("idle", "fanout", "latency", "open100", "open300", "quiet")
BASE = ("idle", "fanout", "latency", "quiet")  # references that issue 16 does not compare
LOADED = ("fanout", "latency", "open100", "open300")  # no idle: RSS would add Redis and all


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    label: str
    wire: str  # line | ws | resp
    dialect: str  # query | chatsupport (ws only)
    role: str  # ceiling | reference | ours
    scenarios: tuple[str, ...] = ALL
    nodes: int = 1
    gen_args: tuple[str, ...] = ()  # extra load generator flags for this target
    workers: int = 1  # `serve --workers N`: one port, N processes (always on Redis)
    redis: bool = False  # on a Redis broker of its own even with one node and one worker

    @property
    def needs_redis(self) -> bool:
        return self.redis or self.nodes > 1 or self.workers > 1


TARGETS = (
    Target("sink-line", f"generator ceiling, lines (sink, x{SINK_COPIES})", "line", "query",
           "ceiling", ("fanout",)),
    Target("sink-ws", f"generator ceiling, WebSocket (sink, x{SINK_COPIES})", "ws", "query",
           "ceiling", ("fanout",)),
    Target("sink-resp", f"generator ceiling, RESP (sink, x{SINK_COPIES})", "resp", "query",
           "ceiling", ("fanout",)),
    Target("threaded", "original design: thread per client, sendall loop (TCP)", "line", "query",
           "reference", BASE),
    Target("asyncio-naive", "plain asyncio, one write per message per peer (TCP)", "line",
           "query", "reference", BASE),
    Target("redis", "Redis pub/sub (C)", "resp", "query", "reference"),
    Target("node-ws", "Node.js ws broadcast (WebSocket)", "ws", "query", "reference", BASE),
    Target("websockets", "Python websockets broadcast() (WebSocket)", "ws", "query",
           "reference", BASE),
    # ngIRCd listens with a backlog of 10: more connections at once are dropped (SYN retries);
    # with more registrations under way at once it gets slower, not faster (measured: 2,118
    # ready in 60 s with 2,000 in flight, 10,000 in 42 s with 8)
    Target("ngircd", "ngIRCd (C IRC server), penalties off", "irc", "query", "reference",
           gen_args=("--connect-concurrency", "8", "--in-flight", "8")),
    Target("inspircd", "InspIRCd 3 (C++ IRC server), fakelag off", "irc", "query", "reference"),
    Target("chatsupport-tcp", "ChatSupport, text TCP", "line", "query", "ours"),
    Target("chatsupport-irc", "ChatSupport, IRC", "irc", "query", "ours"),
    Target("chatsupport-ws", "ChatSupport, WebSocket JSON", "ws", "chatsupport", "ours"),
    Target("chatsupport-2nodes-ws", "ChatSupport, 2 nodes on one Redis, WebSocket", "ws",
           "chatsupport", "ours", ("fanout", "latency"), nodes=2),
    # issue 16 item 4: CPU per delivery of --workers 2 against one process, on the same Redis
    Target("chatsupport-tcp-redis", "ChatSupport, text TCP, one process on Redis", "line",
           "query", "ours", LOADED, redis=True),
    Target("chatsupport-tcp-workers2", "ChatSupport, text TCP, --workers 2 on Redis", "line",
           "query", "ours", LOADED, workers=2),
)  # fmt: skip
BY_NAME = {t.name: t for t in TARGETS}


@dataclass(slots=True)
class Env:
    """Where things are and how to pin them."""

    src: Path
    logs: Path
    server_cpu: int | None
    python: str = sys.executable

    def pin(self, argv: list[str]) -> list[str]:
        if self.server_cpu is None or shutil.which("taskset") is None:
            return argv
        return ["taskset", "-c", str(self.server_cpu), *argv]


def has_irc(env: Env) -> bool:
    """Whether the ChatSupport under test has the IRC interface (older trees do not)."""
    return (env.src / "chatsupport" / "transport" / "irc.py").exists()


def unavailable(target: Target, env: Env) -> str | None:
    """Why ``target`` cannot run here, or None."""
    if target.name in IRC_SERVERS and shutil.which(IRC_SERVERS[target.name][0]) is None:
        return f"{IRC_SERVERS[target.name][0]} not installed (apt-get install {target.name})"
    if target.name == "chatsupport-irc" and not has_irc(env):
        return "no IRC interface in this ChatSupport yet"
    if target.name == "node-ws":
        if shutil.which("node") is None:
            return "node not installed"
        if not (BENCH / "node" / "node_modules" / "ws").is_dir():
            return "bench/node/node_modules missing (npm ci in bench/node)"
    if (target.name == "redis" or target.needs_redis) and shutil.which("redis-server") is None:
        return "redis-server not installed"
    if target.role == "ours" and not (env.src / "chatsupport" / "__main__.py").exists():
        return f"no ChatSupport server in {env.src} (use --src)"
    if target.needs_redis and not list((env.src / "chatsupport" / "broker").glob("redis*")):
        return "no Redis broker in src/chatsupport/broker yet"
    if target.workers > 1 and not (env.src / "chatsupport" / "workers.py").exists():
        return "no `serve --workers` in this ChatSupport yet"
    return None


class Process:
    """One server subprocess, its output in a log file."""

    def __init__(self, argv: list[str], env: Env, log_name: str, extra_env: dict[str, str]):
        env.logs.mkdir(parents=True, exist_ok=True)
        self.out_path = env.logs / f"{log_name}.out"
        self.err_path = env.logs / f"{log_name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                env.pin(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=BENCH,
                env={**os.environ, **extra_env},
            )
        self.pid = self.proc.pid

    def ports(self, count: int, timeout: float = 20.0) -> dict[str, int]:
        """Ports by scheme, once ``count`` listening lines were printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {
                m[1].decode(): int(m[2]) for m in LISTENING.finditer(self.out_path.read_bytes())
            }
            if len(found) >= count:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        tail = self.err_path.read_text(errors="replace")[-500:]
        self.stop()
        raise RuntimeError(f"server did not start (exit {self.proc.returncode}): {tail}")

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM this PID, SIGKILL it after ``grace`` seconds; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@dataclass(slots=True)
class Running:
    """A started target: the ports to drive, the PIDs to measure, what to stop."""

    ports: list[int]
    processes: list[Process]
    workers: list[int] = field(default_factory=list)  # PIDs of `--workers` children

    @property
    def pids(self) -> list[int]:
        """Every process whose CPU and memory count: the workers' too (a parent's CPU
        time does not include its children's until they end)."""
        return [p.pid for p in self.processes] + self.workers

    def stop(self) -> list[int | None]:
        return [p.stop() for p in reversed(self.processes)]


def children(parent: int) -> list[int]:
    """The PIDs whose parent is ``parent`` (from /proc): the workers of ``--workers``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"{entry.path}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent:
                found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(env: Env, log_name: str) -> tuple[Process, int]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--maxclients", "19000", "--loglevel", "warning"]  # fmt: skip
    proc = Process(argv, env, log_name, {})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    proc.stop()
    raise RuntimeError("redis-server did not answer PING")


BENCH_ADDRESS_KEY = "bench-address-key-" + "0" * 32  # a benchmark keeps no secrets


def start_chatsupport(
    env: Env, log_name: str, wire: str, broker: str | None, extra: Sequence[str] = ()
) -> tuple[Process, int]:
    """ChatSupport with the benchmark's limits; `extra` flags come last (they win)."""
    argv = [env.python, "-m", "chatsupport", "serve", *CHATSUPPORT_FLAGS, *extra]
    if broker:
        argv += ["--broker", broker]
    irc = has_irc(env)
    if irc:  # never the default 6667: a reference IRC server or another run may hold it
        argv += ["--irc-port", "0"]
    pythonpath = os.pathsep.join(filter(None, [str(env.src), os.environ.get("PYTHONPATH")]))
    environ = {"PYTHONPATH": pythonpath}
    if broker:  # every node must hash addresses with the same operator secret
        environ["CHATSUPPORT_ADDRESS_KEY"] = BENCH_ADDRESS_KEY
    proc = Process(argv, env, log_name, environ)
    ports = proc.ports(3 if irc else 2)
    return proc, ports[{"line": "tcp", "irc": "irc"}.get(wire, "http")]


# --- reference IRC servers: configured for a benchmark (no flood penalties, no per-address
# caps, no DNS/ident look-ups, pings rare), listening on 127.0.0.1 only.
NGIRCD_CONF = """[Global]
Name = bench.invalid
Info = bench
Listen = 127.0.0.1
Ports = {port}
PidFile = {dir}/ngircd.pid
MotdPhrase = bench
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
"""
INSPIRCD_CONF = """<config format="xml">
<server name="bench.invalid" description="bench" network="bench">
<admin name="bench" nick="bench" email="bench@bench.invalid">
<bind address="127.0.0.1" port="{port}" type="clients">
<connect name="bench" allow="*" maxchans="1000" timeout="60" pingfreq="600"
  hardsendq="64M" softsendq="8M" recvq="8M" threshold="1000000000" commandrate="1000000000"
  fakelag="no" localmax="1000000" globalmax="1000000" maxconnwarn="no" useident="no"
  limit="1000000" resolvehostnames="no">
<performance netbuffersize="65536" somaxconn="1024" softlimit="40000" clonesonconnect="no"
  timeskipwarn="0" quietbursts="yes">
<pid file="{dir}/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/inspircd.log">
<files motd="{dir}/motd.txt">
<options defaultmodes="nt">
<security hidesplits="yes" maxtargets="20">
<limits maxnick="30" maxchan="64" maxline="512">
<dns timeout="1">
"""
IRC_SERVERS = {
    "ngircd": ("ngircd", NGIRCD_CONF, ["--nodaemon", "--config"]),
    "inspircd": ("inspircd", INSPIRCD_CONF, ["--nofork", "--runasroot", "--config"]),
}


def wait_for_port(proc: Process, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    tail = proc.err_path.read_text(errors="replace") + proc.out_path.read_text(errors="replace")
    proc.stop()
    raise RuntimeError(f"server did not listen on {port}: {tail[-500:]}")


def start_irc_server(name: str, env: Env, log_name: str) -> tuple[Process, int]:
    binary, template, flags = IRC_SERVERS[name]
    port = free_port()
    folder = env.logs / f"{log_name}-conf"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "motd.txt").write_text("bench\n")
    conf = folder / f"{name}.conf"
    conf.write_text(template.format(port=port, dir=folder))
    proc = Process([binary, *flags, str(conf)], env, log_name, {})
    wait_for_port(proc, port)
    return proc, port


def start(target: Target, env: Env, log_name: str) -> Running:
    """Start ``target``; the caller stops it with ``Running.stop()``."""
    py = env.python
    if target.name == "redis":
        proc, port = start_redis(env, log_name)
        return Running([port], [proc])
    if target.name in IRC_SERVERS:
        proc, port = start_irc_server(target.name, env, log_name)
        return Running([port], [proc])
    if target.role == "ours":
        processes: list[Process] = []
        broker = None
        try:
            if target.needs_redis:
                redis, rport = start_redis(env, log_name + "-redis")
                processes.append(redis)
                broker = f"redis://127.0.0.1:{rport}/0"
            ports, workers = [], []
            extra = ("--workers", str(target.workers)) if target.workers > 1 else ()
            for node in range(target.nodes):
                proc, port = start_chatsupport(
                    env, f"{log_name}-{node}", target.wire, broker, extra
                )
                processes.append(proc)
                ports.append(port)
                if target.workers > 1:  # they all listen once the parent prints its lines
                    workers += children(proc.pid)
        except Exception:
            for p in reversed(processes):
                p.stop()
            raise
        return Running(ports, processes, workers)
    argv = {
        "threaded": [py, "ref_threaded.py"],
        "asyncio-naive": [py, "ref_asyncio_naive.py"],
        "websockets": [py, "ref_websockets.py"],
        "node-ws": ["node", "node/ws_broadcast.js"],
    }.get(target.name) or [py, "ref_sink.py", "--wire", target.wire, "--copies", str(SINK_COPIES)]
    proc = Process([*argv, "--port", "0"], env, log_name, {})
    found = proc.ports(1)
    return Running([next(iter(found.values()))], [proc])
