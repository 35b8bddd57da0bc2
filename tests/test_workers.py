"""`chatsupport serve --workers N`: real processes sharing real ports, on a real Redis.

The parent is started as an operator starts it; its workers are found as its children in
/proc. Connections are spread by the kernel (SO_REUSEPORT), so which worker a client lands
on is read from each worker's own /metrics. Every wait is bounded; every process started
here is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chatsupport import Config, workers

from .certs import make_certificate
from .helpers import FAST, ROOT, TEST_ADDRESS_KEY, TextClient, eventually
from .redis_server import RedisServer, delete_prefix, redis_server_fixture

redis_server = pytest.fixture(scope="session")(redis_server_fixture)

START = 30.0  # seconds a parent and its workers may take to listen (a loaded machine)
STOP = 30.0  # seconds they may take to stop
CLIENTS = 24  # text clients: the chance that all land on one of two workers is 2^-23
FLAGS = [f"--{name.replace('_', '-')}={value}" for name, value in FAST.items()]


@pytest.fixture
def url(redis_server: RedisServer) -> Iterator[str]:
    """A broker URL under a key prefix of this test's own (deleted afterwards)."""
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    yield redis_server.url(prefix)
    delete_prefix(redis_server, prefix)


class Supervised:
    """`python -m chatsupport serve --workers N ...`, its log in a file, stopped by PID."""

    def __init__(self, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = ["--tcp-port", "0", "--http-port", "0", "--irc-port", "0", *FLAGS, *args]
        self.log = log
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "CHATSUPPORT_ADDRESS_KEY": TEST_ADDRESS_KEY,
            **(env or {}),
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.urls: list[str] = []

    async def run(self, timeout: float = START) -> tuple[int, str, str]:
        """Run to the end (a refusal): exit status, standard output, the log."""
        with self.log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(), stdout=asyncio.subprocess.PIPE, stderr=err, env=self.env
            )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), self.log.read_text()

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "chatsupport", "serve", *self.args]

    async def start(self, listeners: int) -> Supervised:
        """Start; return once `listeners` lines `listening on URL` were printed."""
        with self.log.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv(), stdout=asyncio.subprocess.PIPE, stderr=err, env=self.env
            )
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(START):
                while len(self.urls) < listeners:
                    line = (await self.proc.stdout.readline()).decode()
                    assert line.startswith("listening on "), (line, self.log.read_text())
                    self.urls.append(line.split()[-1])
        except BaseException:
            await self.stop()
            raise
        return self

    def port(self, scheme: str) -> int:
        url = next(u for u in self.urls if u.startswith(scheme + "://"))
        return int(url.rsplit(":", 1)[1].partition("/")[0])

    def metrics_ports(self) -> list[int]:
        return [int(u.rsplit(":", 1)[1].partition("/")[0]) for u in self.urls if "/metrics" in u]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL past STOP; the parent's exit status, and never a worker left."""
        pids = children(self.pid) if self.proc else []
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for pid in pids:  # a test that failed half-way must not leave one behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return self.proc.returncode


@contextlib.asynccontextmanager
async def supervised(tmp_path: Path, *args: str, listeners: int) -> AsyncIterator[Supervised]:
    server = await Supervised(tmp_path / "serve.log", *args).start(listeners)
    try:
        yield server
    finally:
        await server.stop()


def children(parent: int) -> list[int]:
    """The live (not zombie) processes whose parent is `parent`, from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state != "Z":
            found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def text_connections(port: int) -> int:
    """The `chatsupport_connections{interface="text"}` of the worker whose /metrics is `port`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        body = (await asyncio.wait_for(reader.read(), 5.0)).decode()
    finally:
        writer.close()
    found = re.search(r'^chatsupport_connections\{interface="text"\} ([0-9.]+)$', body, re.M)
    assert found, body
    return int(float(found[1]))


async def open_clients(port: int, count: int) -> list[TextClient]:
    return [await TextClient.open(port) for _ in range(count)]


@pytest.mark.redis
async def test_clients_land_on_both_workers_and_hear_each_other(tmp_path: Path, url: str) -> None:
    args = ("--workers", "2", "--broker", url, "--metrics-port", "0")
    async with supervised(tmp_path, *args, listeners=5) as server:
        assert len(children(server.pid)) == 2
        assert len(server.metrics_ports()) == 2  # each worker its own scrape target
        clients = await open_clients(server.port("tcp"), CLIENTS)
        counts = [await text_connections(port) for port in server.metrics_ports()]
        assert sum(counts) == CLIENTS and min(counts) > 0, counts  # both workers serve
        speaker, *listeners = clients
        await speaker.send("hello from one worker")
        for listener in listeners:  # some of them are on the other worker
            await listener.expect(f"<{speaker.name}> hello from one worker")


@pytest.mark.redis
async def test_a_killed_worker_is_started_again_and_its_people_leave(
    tmp_path: Path, url: str
) -> None:
    """A lease far longer than the test: the people of the killed worker are shown gone
    because its replacement ends the dead worker's lease, not because the lease ran out."""
    args = ("--workers", "2", "--broker", url + "&lease=600", "--metrics-port", "0")
    async with supervised(tmp_path, *args, listeners=5) as server:
        port, metrics = server.port("tcp"), server.metrics_ports()  # worker 1's, worker 2's
        where: dict[int, list[TextClient]] = {1: [], 2: []}  # worker -> its clients
        for _ in range(16):
            before = [await text_connections(m) for m in metrics]
            client = await TextClient.open(port)
            after = [await text_connections(m) for m in metrics]
            where[1 + [a - b for a, b in zip(after, before, strict=True)].index(1)].append(client)
        assert where[1] and where[2], where  # 16 on two workers: all on one 1 in 32,768
        started = dict(re.findall(r"worker (\d) started, pid (\d+)", server.log.read_text()))
        victim = int(started["1"])
        os.kill(victim, signal.SIGKILL)
        log = server.log
        replaced = await eventually(
            lambda: len([p for p in children(server.pid) if p != victim]) == 2, timeout=START
        )
        assert replaced, log.read_text()
        new = max(set(children(server.pid)) - {int(started["2"])})
        assert await eventually(lambda: f"(pid {new}) listening" in log.read_text(), START)
        assert f"worker 1 (pid {victim}) was killed by SIGKILL; starting it again" in (
            log.read_text()
        )
        gone = {c.name for c in where[1]}
        for client in where[2]:
            assert await hears(client, {f"-- {name} left #lobby" for name in gone})
        newcomers = await open_clients(port, 12)  # the port serves again, on both workers
        await newcomers[0].send("after the restart")
        for client in [*where[2], *newcomers[1:]]:
            await client.expect(f"<{newcomers[0].name}> after the restart")


async def hears(client: TextClient, starts: set[str], limit: int = 1000) -> bool:
    """Whether `client` receives lines starting with each of `starts`, in any order."""
    left = set(starts)
    for _ in range(limit):
        if not left:
            return True
        line = await client.line()
        left = {start for start in left if not line.startswith(start)}
    return not left


@pytest.mark.redis
async def test_sigterm_to_the_parent_stops_every_worker(tmp_path: Path, url: str) -> None:
    async with supervised(tmp_path, "--workers", "2", "--broker", url, listeners=3) as server:
        pids = children(server.pid)
        assert len(pids) == 2
        client = await TextClient.open(server.port("tcp"))
        assert await server.stop() == 0
        assert await client.closed()
        assert not [pid for pid in pids if alive(pid)]
        assert "stopped" in server.log.read_text()


@pytest.mark.redis
async def test_workers_stop_when_the_parent_is_killed(tmp_path: Path, url: str) -> None:
    async with supervised(tmp_path, "--workers", "2", "--broker", url, listeners=3) as server:
        pids = children(server.pid)
        assert len(pids) == 2
        os.kill(server.pid, signal.SIGKILL)
        assert await eventually(lambda: not any(alive(pid) for pid in pids), timeout=STOP)


async def test_the_memory_broker_is_refused_before_anything_is_bound(tmp_path: Path) -> None:
    """The port is held here: had the parent tried to bind it, it would say so instead."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, out, log = await Supervised(
            tmp_path / "serve.log", "--workers", "2", "--tcp-port", port
        ).run()
    assert code == 2 and "listening" not in out
    assert "--workers 2 needs a shared broker" in log and "--broker redis://" in log


@pytest.mark.parametrize("count", ["0", "-3"])
async def test_no_workers_is_a_clear_error(tmp_path: Path, count: str) -> None:
    flag = await Supervised(tmp_path / "flag.log", "--workers", count).run()
    env = await Supervised(tmp_path / "env.log", env={"CHATSUPPORT_WORKERS": count}).run()
    for code, out, log in (flag, env):
        assert code == 2 and "listening" not in out
        assert f"workers must be 1 or more, not {count}" in log


@pytest.mark.redis
async def test_a_port_another_program_has_is_refused_once(tmp_path: Path, url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, out, log = await Supervised(
            tmp_path / "serve.log", "--workers", "2", "--broker", url, "--tcp-port", port
        ).run()
    assert code == 1 and "listening" not in out
    assert log.count("cannot listen") == 1 and "worker" not in log  # no worker was started


def listening_ports(pid: int) -> set[int]:
    """The TCP ports `pid` listens on: its socket descriptors matched in /proc/net/tcp*."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                cells = row.split()
                if cells[3] == "0A" and cells[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cells[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.redis
async def test_every_public_port_is_shared_and_metrics_are_each_workers_own(
    tmp_path: Path, url: str
) -> None:
    """Text (behind the TLS door), HTTPS, IRC and IRC over TLS: each worker listens on all."""
    cert, key = make_certificate(tmp_path)
    args = ["--workers", "2", "--broker", url, "--tls-cert", cert, "--tls-key", key]
    args += ["--irc-tls-port", "0", "--metrics-port", "0"]
    async with supervised(tmp_path, *args, listeners=6) as server:
        shared = {server.port(scheme) for scheme in ("tcps", "https", "irc", "ircs")}
        own = server.metrics_ports()
        pids = children(server.pid)
        assert len(pids) == 2 and len(shared) == 4 and len(set(own)) == 2
        found = [listening_ports(pid) for pid in pids]
        assert all(ports - set(own) == shared for ports in found), (found, shared, own)
        assert sorted(len(ports & set(own)) for ports in found) == [1, 1]
        context = ssl.create_default_context(cafile=cert)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port("tcps"), ssl=context
        )
        assert (await TextClient(reader, writer).line()).startswith("*** Welcome")


def test_without_so_reuseport_workers_are_refused_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """This machine has SO_REUSEPORT: a system without it is played by removing it."""
    config = Config(workers=2, broker="redis://127.0.0.1:6379/0", address_key=TEST_ADDRESS_KEY)
    assert workers.refusal(config) is None
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    problem = workers.refusal(config)
    assert problem and "needs SO_REUSEPORT" in problem and "--workers 1" in problem
