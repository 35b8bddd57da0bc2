"""Test clients that speak to a real server over real sockets on 127.0.0.1.

Every wait is bounded in time; nothing here mocks the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from chatsupport import ChatServer, Config
from chatsupport.core import events as ev

ROOT = Path(__file__).resolve().parent.parent
WAIT = 5.0  # seconds any single expectation may take

# Generous limits for tests that are not about limits.
FAST = {
    "msg_rate": 1000.0,
    "msg_burst": 1000.0,
    "max_conns_per_address": 1000,
    "new_conns_per_address": 100000,
    "probation_seconds": 0.0,
}


# The operator's secret every test node shares (a Redis broker needs one; keys.py).
TEST_ADDRESS_KEY = "test-address-key-" + "0123456789abcdef" * 2


def test_config(**overrides: Any) -> Config:
    base = Config(
        host="127.0.0.1", tcp_port=0, http_port=0, irc_port=0, address_key=TEST_ADDRESS_KEY
    )
    return base.replace(**{**FAST, **overrides})


def test_broker() -> str | None:
    """CHATSUPPORT_TEST_BROKER=redis://... runs every test server on Redis instead of in
    memory, each under its own key prefix (so tests stay apart)."""
    url = os.environ.get("CHATSUPPORT_TEST_BROKER")
    if not url:
        return None
    return f"{url}{'&' if '?' in url else '?'}prefix=test-{uuid.uuid4().hex[:12]}:"


async def start_server(**overrides: Any) -> ChatServer:
    broker = test_broker()
    if broker and "broker" not in overrides:
        overrides["broker"] = broker
    server = ChatServer(test_config(**overrides))
    await server.start()
    return server


OPEN_CLIENTS: list[TextClient | WsClient] = []  # closed after each test (conftest)


class TextClient:
    """A netcat-like peer: raw bytes out, lines in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.name = ""
        OPEN_CLIENTS.append(self)

    @classmethod
    async def open(
        cls, port: int, host: str = "127.0.0.1", greet: bool = True, local_addr: str | None = None
    ) -> TextClient:
        reader, writer = await asyncio.open_connection(
            host, port, limit=1 << 20, local_addr=(local_addr, 0) if local_addr else None
        )
        client = cls(reader, writer)
        if greet:
            welcome = await client.line()
            assert welcome.startswith("*** Welcome"), welcome
            client.name = welcome.split("You are ", 1)[1].split(",", 1)[0]
            assert (await client.line()).startswith("-- you are in #lobby")
        return client

    async def send(self, text: str | bytes) -> None:
        data = text if isinstance(text, bytes) else (text + "\n").encode()
        self.writer.write(data)
        await self.writer.drain()

    async def line(self, timeout: float = WAIT) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise EOFError("connection closed")
        return raw.decode().rstrip("\n")

    async def expect(self, predicate: Callable[[str], bool] | str, timeout: float = WAIT) -> str:
        """The first line matching (lines before it are skipped)."""
        test = predicate if callable(predicate) else (lambda s: s == predicate)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            line = await self.line(max(left, 0.01))
            if test(line):
                return line

    async def until_barrier(self, limit: int = 10000) -> list[str]:
        """The lines that arrive before the answer to a `/who lobby` sent now. The server answers a
        connection's requests in order and writes to it in order, so anything it had already
        sent this connection comes before: a sync point to show that something did not arrive,
        with no quiet window to wait out."""
        await self.send("/who lobby")  # a public room: answered wherever this person is
        lines: list[str] = []
        for _ in range(limit):
            line = await self.line()
            if line.startswith("-- in #"):
                return lines
            lines.append(line)
        raise AssertionError(f"no /who answer within {limit} lines")

    async def closed(self, timeout: float = WAIT) -> bool:
        """True once the server has closed the connection (remaining lines are skipped)."""
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
                return True
        return False

    async def close(self) -> None:
        self.writer.close()
        with suppress(Exception):
            await self.writer.wait_closed()


class WsClient:
    """A WebSocket JSON peer."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        OPEN_CLIENTS.append(self)
        self.welcome: dict[str, Any] = {}
        self.backlog: list[dict[str, Any]] = []

    @classmethod
    async def open(
        cls,
        port: int,
        origin: str | None = None,
        welcome: bool = True,
        path: str = "/ws",
        local_addr: str | None = None,
    ) -> WsClient:
        headers = {"Origin": origin} if origin else None
        ws = await connect(
            f"ws://127.0.0.1:{port}{path}",
            additional_headers=headers,
            open_timeout=WAIT,
            max_size=1 << 22,
            local_addr=(local_addr, 0) if local_addr else None,
            # Closing after the test: a server already stopped never answers the closing
            # handshake, and the default 10 s wait for it was most of some tests' time.
            close_timeout=1.0,
        )
        client = cls(ws)
        if welcome:
            client.welcome = await client.expect("welcome")
            await client.expect("joined")
        return client

    @property
    def uid(self) -> str:
        return str(self.welcome["uid"])

    @property
    def name(self) -> str:
        return str(self.welcome["name"])

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        if self.backlog:
            return self.backlog.pop(0)
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        data: dict[str, Any] = json.loads(raw)
        return data

    async def expect(self, kind: str, timeout: float = WAIT, **fields: Any) -> dict[str, Any]:
        """The first frame of `kind` with these fields; frames skipped are kept for later."""
        skipped: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                left = max(deadline - asyncio.get_running_loop().time(), 0.01)
                frame = await self.recv(left)
                if frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items()):
                    return frame
                skipped.append(frame)
        finally:
            self.backlog = skipped + self.backlog

    async def request(self, frame: dict[str, Any], reply: str) -> dict[str, Any]:
        ref = f"r{id(frame)}"
        await self.send({**frame, "ref": ref})
        return await self.expect(reply, ref=ref)

    async def close(self) -> None:
        with suppress(Exception):
            await self.ws.close()


class ServerProcess:
    """`python -m chatsupport serve` as a real process, stopped by its PID."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, cwd: str | None = None
    ) -> None:
        if not any(a.startswith("--irc-port") for a in args):
            args = ("--irc-port", "0", *args)  # never the shared default 6667
        self.args = args
        self.cwd = cwd
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "src"),
            "CHATSUPPORT_ADDRESS_KEY": TEST_ADDRESS_KEY,
            **(env or {}),
        }
        self.proc: subprocess.Popen[str] | None = None
        self.urls: dict[str, str] = {}

    def start(self, timeout: float = 15.0) -> ServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatsupport", "serve", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.cwd,
        )
        assert self.proc.stdout is not None
        optional = ("--irc-tls-port", "--metrics-port")
        listeners = 3 + sum(any(a.startswith(o) for a in self.args) for o in optional)
        for _ in range(listeners):
            line = self.proc.stdout.readline()
            if not line.startswith("listening on "):
                self.stop()
                raise RuntimeError(f"server did not start: {line!r}")
            url = line.split()[-1]
            self.urls["metrics" if url.endswith("/metrics") else url.split(":")[0]] = url
        return self

    def port(self, scheme: str) -> int:
        """The port of the listener for `scheme` ("tcp", "http", "irc", "metrics"...)."""
        return int(self.urls[scheme].rsplit(":", 1)[1].partition("/")[0])

    def signal(self, signum: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=15)

    def stop(self) -> tuple[str, str]:
        if self.proc is None:
            return "", ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=5)
        return out, err


async def eventually(check: Callable[[], bool], timeout: float = WAIT, step: float = 0.05) -> bool:
    """Whether `check()` comes true, polled every `step` s for at most `timeout` s: for what
    the server does in its own time (noticing a close), never to measure time."""
    for _ in range(max(1, round(timeout / step))):
        if check():
            return True
        await asyncio.sleep(step)
    return check()


def abort_timers() -> set[asyncio.TimerHandle]:
    """Pending `transport.abort` deadlines of this (the standard library's) event loop: a
    test takes them before and after, since other tests share the loop."""
    scheduled: list[asyncio.TimerHandle] = asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
    return {
        timer
        for timer in scheduled
        if not timer.cancelled() and getattr(timer._callback, "__name__", "") == "abort"  # type: ignore[attr-defined]
    }


def require(tool: str) -> str:
    """A tool the test needs: under CI its absence is a failure, never a silent skip."""
    import pytest

    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is required under CI but is not installed")
        pytest.skip(f"{tool} not installed")
    return path


class Lines:
    """A terminal client's view (`chatsupport.client.terminal.View`) that keeps the lines it
    was given: the client driven with the core's own events, no terminal needed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def message(self, event: ev.Message, tag: str, mention: str) -> None:
        self.lines.append(event.text)

    def refresh(self) -> None:
        pass
