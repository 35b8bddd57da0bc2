"""`chatsupport serve --workers N`: N processes of one server on one machine.

The kernel spreads connections over the workers: each listens on the same public ports with
SO_REUSEPORT, and all share one Redis broker, as separate nodes do. A worker is a node: its
own id, lease and people (docs/architecture.md, "Presence"). /metrics is not shared: worker
k answers on `--metrics-port` + k - 1, so a scraper reads one worker's counters each time,
not whichever worker the kernel picked.

The parent serves nothing. Before it binds anything it checks what would make every worker
fail alike (a broker that is not shared, no SO_REUSEPORT, no address key). Then it holds
each public port bound but not listening (the kernel hands connections to listening sockets
only): a port 0 is chosen once for all the workers, and no other program takes a port while
a worker restarts. It starts worker k as `python -m chatsupport serve ... --worker k`,
prints the `listening on` lines once every worker listens, restarts a worker that dies
after a pause that doubles up to a bound, and stops them all on SIGTERM or SIGINT. A worker
stops when the parent dies: PR_SET_PDEATHSIG on Linux, and everywhere the end of its
standard input, a pipe only the parent holds open.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .config import Config
from .keys import operator_secret

log = logging.getLogger("chatsupport.workers")

FIRST_PAUSE = 0.5  # seconds before a worker that died is started again
LONGEST_PAUSE = 30.0  # the pause doubles at each death in a row, up to this
STEADY = 60.0  # a worker that ran this long before dying is restarted after FIRST_PAUSE
STOP_GRACE = 15.0  # seconds the workers have to say goodbye before they are killed
READY = "worker ready"  # a worker's last start-up line to the parent, with its node id
PR_SET_PDEATHSIG = 1  # linux/prctl.h
SHARED_BROKERS = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True, slots=True)
class Role:
    """What a worker process knows of its place: set by the parent's hidden flags."""

    index: int  # 1..N
    parent: int  # the supervisor's PID
    after: str = ""  # the broker node of the worker this one replaces (it died)


def refusal(config: Config) -> str | None:
    """Why `config.workers` processes cannot serve `config`, or None; nothing is bound yet."""
    if config.workers == 1:
        return None
    if not config.broker.startswith(SHARED_BROKERS):
        return (
            f"--workers {config.workers} needs a shared broker: with --broker {config.broker} "
            "each worker would be a chat of its own, and people on different workers would "
            "not see each other. Start Redis and add --broker redis://127.0.0.1:6379/0 "
            '(docs/deploy.md, "Several workers on one machine")'
        )
    if not reuse_port_works():
        return (
            "--workers needs SO_REUSEPORT (several processes listening on one port), which "
            "this system does not offer: run --workers 1, one process per port, behind a "
            "load balancer instead (docs/deploy.md)"
        )
    try:
        operator_secret(config)  # the same key in every worker: without it each would fail
    except (OSError, ValueError) as error:
        return str(error)
    return None


def reuse_port_works() -> bool:
    option = getattr(socket, "SO_REUSEPORT", None)
    if option is None:
        return False
    with socket.socket() as probe:
        try:
            probe.setsockopt(socket.SOL_SOCKET, option, 1)
        except OSError:
            return False
    return True


@dataclass(slots=True)
class HeldPorts:
    """The public ports, bound (not listening) by the parent while it runs."""

    sockets: list[socket.socket] = field(default_factory=list)

    def hold(self, host: str, port: int) -> int:
        """Bind `port` (0: a free one) on each address of `host`, as the workers will; the
        port. OSError if another program has it, or another server sharing it already."""
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in infos:
            address = (address[0], port, *address[2:])
            # Alone first: a port that any listener has (even another --workers server's,
            # which would share it silently) is refused like in a single process.
            with _socket(family, kind, proto) as probe:
                probe.bind(address)
                port = probe.getsockname()[1]
            held = _socket(family, kind, proto)
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            held.bind((address[0], port, *address[2:]))
            self.sockets.append(held)
        return port

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


def _socket(family: int, kind: int, proto: int) -> socket.socket:
    """A socket set up as asyncio's create_server sets up a listener's."""
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def hold_ports(config: Config, held: HeldPorts) -> Config:
    """`config` with each shared port as held (a port 0 resolved once for every worker)."""
    changes = {
        name: held.hold(config.host, getattr(config, name))
        for name in ("tcp_port", "http_port", "irc_port", "irc_tls_port")
        if getattr(config, name) is not None
    }
    return config.replace(**changes)


def worker_argv(argv: Sequence[str], config: Config, role: Role) -> list[str]:
    """The command line of one worker: the operator's, the ports as held, its role."""
    ports = {
        "--tcp-port": config.tcp_port,
        "--http-port": config.http_port,
        "--irc-port": config.irc_port,
        "--irc-tls-port": config.irc_tls_port,
        "--metrics-port": metrics_port(config, role.index),
    }
    extra = [str(v) for flag, port in ports.items() if port is not None for v in (flag, port)]
    extra += ["--worker", str(role.index), "--worker-of", str(role.parent)]
    if role.after:
        extra += ["--worker-after", role.after]
    return [sys.executable, "-m", "chatsupport", *argv, *extra]


def metrics_port(config: Config, index: int) -> int | None:
    """Worker `index`'s own /metrics port: `metrics_port` + index - 1 (0: any free one)."""
    if config.metrics_port is None:
        return None
    return config.metrics_port + index - 1 if config.metrics_port else 0


def supervise(config: Config, argv: Sequence[str]) -> int:
    """Run `config.workers` workers until SIGTERM or SIGINT; the exit status."""
    problem = refusal(config)
    if problem:
        print(f"chatsupport: {problem}", file=sys.stderr)
        return 2
    if not sys.platform.startswith("linux"):  # BSD and macOS accept it but may not spread
        log.warning(
            "SO_REUSEPORT spreads connections over the workers on Linux; here one "
            "worker may get them all (docs/deploy.md)"
        )
    held = HeldPorts()
    try:
        config = hold_ports(config, held)
    except OSError as error:
        held.close()
        print(f"chatsupport: cannot listen: {error}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(Supervisor(config, argv).run())
    finally:
        held.close()


@dataclass(slots=True)
class Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    node: str = ""  # its broker node, as it said when ready
    urls: list[str] = field(default_factory=list)  # its `listening on` lines, this run
    ready: bool = False  # it has listened at least once


class Supervisor:
    def __init__(self, config: Config, argv: Sequence[str]) -> None:
        self.config = config
        self.argv = list(argv)
        self.workers = [Worker(k) for k in range(1, config.workers + 1)]
        self.stopping = asyncio.Event()
        self.failure = 0  # the exit status when the workers could not start
        self.announced = False  # the listening lines were printed

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stopping.set)
        keepers = [loop.create_task(self._keep_safely(worker)) for worker in self.workers]
        await self.stopping.wait()
        await self._stop_all(keepers)
        log.info("stopped")
        return self.failure

    async def _keep_safely(self, worker: Worker) -> None:
        """`_keep`; should it fail, stop everything rather than leave a worker unwatched."""
        try:
            await self._keep(worker)
        except Exception:
            log.exception("supervising worker %d failed; stopping", worker.index)
            self.failure = self.failure or 1
            self.stopping.set()

    async def _keep(self, worker: Worker) -> None:
        """Run `worker` until the end; start it again when it dies."""
        loop = asyncio.get_running_loop()
        pause = FIRST_PAUSE
        while not self.stopping.is_set():
            began = loop.time()
            pid, code = await self._run_once(worker)
            if self.stopping.is_set():
                return
            if not self.announced:  # never served: fail as a single process would
                log.error("worker %d (pid %d) %s while starting", worker.index, pid, said(code))
                self.failure = code if code > 0 else 1
                self.stopping.set()
                return
            if loop.time() - began >= STEADY:
                pause = FIRST_PAUSE
            log.warning(
                "worker %d (pid %d) %s; starting it again in %.1f s",
                *(worker.index, pid, said(code), pause),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), pause)
            pause = min(pause * 2, LONGEST_PAUSE)

    async def _run_once(self, worker: Worker) -> tuple[int, int]:
        """Start `worker`, follow its output until it ends; its PID and exit status."""
        role = Role(worker.index, os.getpid(), worker.node)
        try:
            process = await asyncio.create_subprocess_exec(
                *worker_argv(self.argv, self.config, role),
                stdin=asyncio.subprocess.PIPE,  # never written: its end tells it we live
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as error:  # out of processes or descriptors: a death like any other
            log.error("worker %d could not be started: %s", worker.index, error)
            return 0, 1
        worker.process, worker.urls = process, []
        log.info("worker %d started, pid %d", worker.index, process.pid)
        if self.stopping.is_set():  # stopped while it was being started
            process.send_signal(signal.SIGTERM)
        assert process.stdout is not None
        async for raw in process.stdout:
            self._heard(worker, raw.decode(errors="replace").rstrip("\n"))
        code = await process.wait()
        worker.process = None
        return process.pid, code

    def _heard(self, worker: Worker, line: str) -> None:
        if line.startswith("listening on "):
            worker.urls.append(line.removeprefix("listening on "))
        elif line.startswith(READY):
            worker.node = line.removeprefix(READY).strip()
            worker.ready = True
            pid = worker.process.pid if worker.process else 0
            log.info("worker %d (pid %d) listening", worker.index, pid)
            self._announce()
        else:
            with contextlib.suppress(OSError):  # our standard output closed: nothing to do
                print(line, flush=True)

    def _announce(self) -> None:
        """The `listening on` lines, once, when every worker listens: the shared ports as
        worker 1 said them, then each worker's own /metrics."""
        if self.announced or not all(w.ready for w in self.workers):
            return
        self.announced = True
        first = [url for url in self.workers[0].urls if not url.endswith("/metrics")]
        own = [url for w in self.workers for url in w.urls if url.endswith("/metrics")]
        for url in first + own:
            print(f"listening on {url}", flush=True)
        log.info("%d workers listening", len(self.workers))

    async def _stop_all(self, keepers: list[asyncio.Task[None]]) -> None:
        """SIGTERM to every worker (they say goodbye), SIGKILL to any left after the grace."""
        self._signal_all(signal.SIGTERM)
        _, left = await asyncio.wait(keepers, timeout=STOP_GRACE)
        if left:
            log.warning("%d workers did not stop in %.0f s: killing them", len(left), STOP_GRACE)
            self._signal_all(signal.SIGKILL)
            await asyncio.wait(left, timeout=STOP_GRACE)

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signum)


def said(code: int) -> str:
    """How a worker ended, in words: `exited with status 1`, `was killed by SIGKILL`."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


# ---- the worker's side -----------------------------------------------------------------------
def become_worker(role: Role) -> None:
    """Die with the parent: the kernel sends SIGTERM when it ends (Linux); a parent already
    gone before that was asked for means stop now."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != role.parent:
        raise SystemExit(1)


def watch_parent(loop: asyncio.AbstractEventLoop, gone: Callable[[], None]) -> None:
    """Call `gone` when standard input ends: only the parent holds its other end open, so
    it ends when the parent does, however it ends (and wherever there is no PDEATHSIG)."""
    fd = sys.stdin.fileno()
    os.set_blocking(fd, False)

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            gone()

    loop.add_reader(fd, readable)
