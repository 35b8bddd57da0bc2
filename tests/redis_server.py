"""A real redis-server of our own on a spare port, started and stopped by PID.

Nothing is kept on disk (`--save "" --appendonly no`), as docs/deploy.md recommends.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing

import redis

from .helpers import require


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int, pid: int) -> bool:
    """Whether the redis-server with this PID answers on `port` (and not another test
    worker's, which may have drawn the same free port a moment before)."""
    try:
        with closing(redis.Redis(port=port, socket_timeout=0.5)) as client:
            return int(client.info("server")["process_id"]) == pid
    except (redis.RedisError, OSError):
        return False


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.fixed = port is not None  # or once started: a restart keeps its port (its URL)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = tempfile.mkdtemp(prefix="chatsupport-redis-")

    def url(self, prefix: str | None = None, **options: str) -> str:
        """A broker URL with its own key prefix (tests sharing a server stay apart)."""
        query = {"prefix": prefix or f"t{uuid.uuid4().hex[:10]}:", **options}
        return f"redis://127.0.0.1:{self.port}/0?" + "&".join(f"{k}={v}" for k, v in query.items())

    def start(self, timeout: float = 15.0) -> RedisServer:
        binary = require("redis-server")
        fixed = self.fixed
        deadline = time.monotonic() + timeout
        while True:  # the port may still be held for a moment after a stop
            self.proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self.workdir,
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _answers(self.port, self.proc.pid):
                    self.fixed = True
                    return self
                time.sleep(0.05)
            self.stop()
            if time.monotonic() >= deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            if not fixed:
                self.port = free_port()  # taken meanwhile (another worker): draw again
            time.sleep(0.2)

    def pause(self) -> None:
        """SIGSTOP: Redis hangs, its connections stay open (a stalled, not a dead, server)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def redis_server_fixture() -> Iterator[RedisServer]:
    """For `pytest.fixture(scope="session")`: one server for a test module's tests."""
    server = RedisServer().start()
    yield server
    server.stop()


def delete_prefix(server: RedisServer, prefix: str) -> None:
    with closing(redis.Redis(port=server.port)) as client:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
