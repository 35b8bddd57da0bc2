"""The terminal client (`chatsupport connect`), driven through a real pseudo-terminal and
through pipes, against a real server, with netcat-style and WebSocket peers."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import signal
import struct
import sys
import termios
from pathlib import Path

import pytest

from chatsupport import ChatServer
from chatsupport.core.session import Session

from ..broker.test_cluster import say_until_accepted
from ..certs import make_certificate
from ..helpers import ROOT, WAIT, TextClient, WsClient, eventually, start_server
from ..redis_server import RedisServer

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]")


def client_env() -> dict[str, str]:
    # No cursor-position requests: a test terminal does not answer them.
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "TERM": "xterm-256color",
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }


class Terminal:
    """`chatsupport connect` on the slave side of a pty; we are the person at the keyboard."""

    def __init__(self, master: int, proc: asyncio.subprocess.Process) -> None:
        self.master, self.proc = master, proc
        self.raw = bytearray()
        self.changed = asyncio.Event()
        self.name = ""
        asyncio.get_running_loop().add_reader(master, self._readable)

    @classmethod
    async def start(cls, url: str) -> Terminal:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatsupport", "connect", url,
            stdin=slave, stdout=slave, stderr=slave, env=client_env(), start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        terminal = cls(master, proc)
        welcome = await terminal.expect("Type /help for commands.")
        terminal.name = welcome.split("You are ", 1)[1].split(", in #", 1)[0]
        return terminal

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.raw += data
        self.changed.set()

    @property
    def screen(self) -> str:
        """Everything shown so far, without the terminal's control sequences."""
        return ANSI.sub("", self.raw.decode(errors="replace")).replace("\r", "")

    async def expect(self, text: str, timeout: float = 10.0) -> str:
        """Wait for `text` on screen; returns the line it is on."""
        async with asyncio.timeout(timeout):
            while text not in self.screen:
                self.changed.clear()
                await self.changed.wait()
        screen = self.screen
        start = screen.rfind("\n", 0, screen.index(text)) + 1
        end = screen.find("\n", start)
        return screen[start : end if end >= 0 else None]

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    async def exit_status(self) -> int:
        return await asyncio.wait_for(self.proc.wait(), 10)

    async def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only what we started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 10)
        with contextlib.suppress(OSError, ValueError):
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)


def url(server: ChatServer) -> str:
    return f"ws://127.0.0.1:{server.http_port}/ws"


async def test_terminal_client_chats_with_a_netcat_peer(server: ChatServer) -> None:
    term = await Terminal.start(url(server))
    try:
        peer = await TextClient.open(server.tcp_port)
        await term.expect(f"-- {peer.name} joined #lobby (2 here)")
        await peer.send("hello from netcat")
        assert (await term.expect("hello from netcat")).endswith(f"<{peer.name}> hello from netcat")
        term.type("hello from the terminal")
        assert await peer.expect(lambda s: "terminal" in s) == (
            f"<{term.name}> hello from the terminal"
        )
        term.type("/me waves")
        assert await peer.expect(lambda s: "waves" in s) == f"* {term.name} waves"
        await peer.send("/me nods")
        await term.expect(f"* {peer.name} nods")
        term.type("/join no such room!")
        await term.expect("!! room names are 1-32 of a-z, 0-9 and -")
        term.type("/nick Pty Person")
        await term.expect("-- you are now Pty Person")
        assert await peer.expect(lambda s: "Pty" in s) == (
            f"-- {term.name} is now known as Pty Person in #lobby"
        )
        await peer.send("\x1b[2Jsneaky \x1b]0;title\x07escapes")
        await term.expect("sneaky escapes")
        assert "\x1b]0;" not in term.raw.decode(errors="replace")
        term.type("/quit")
        assert await term.exit_status() == 0
        await term.expect("*** goodbye (quit)")
        assert await peer.expect(lambda s: "left" in s) == "-- Pty Person left #lobby (1 here)"
    finally:
        await term.close()


async def _peer_and_session(
    server: ChatServer, term: Terminal
) -> tuple[WsClient, Session, asyncio.Transport]:
    """Someone else in the room, the terminal's session once it has shown their words, and
    the server's end of its connection (to cut it as a network drop would)."""
    peer = await WsClient.open(server.http_port)
    await peer.request({"type": "say", "text": "before the cut"}, "message")
    await term.expect("before the cut")
    assert server.chat is not None
    session = next(s for s in server.chat.sessions.values() if s.name == term.name)
    assert session.link is not None
    return peer, session, session.link.sink.transport  # type: ignore[attr-defined]


async def test_terminal_client_reconnects_and_resumes_without_loss(server: ChatServer) -> None:
    term = await Terminal.start(url(server))
    try:
        peer, session, transport = await _peer_and_session(server, term)
        transport.abort()  # the network drops
        await eventually(lambda: session.link is None, step=0.02)  # the server lets go
        for n in range(20):
            await peer.request({"type": "say", "text": f"lost-{n:02d}"}, "message")
        resumed = await term.expect("-- resumed (")
        missed = int(resumed.split("-- resumed (", 1)[1].split(" ", 1)[0])
        await term.expect("lost-19")
        screen = term.screen
        assert "-- reconnecting in" in screen
        for n in range(20):  # every message exactly once, in order
            assert screen.count(f"lost-{n:02d}") == 1, n
        positions = [screen.index(f"lost-{n:02d}") for n in range(20)]
        assert positions == sorted(positions)
        replayed = screen[: screen.index("-- resumed (")]
        assert missed == sum(f"lost-{n:02d}" in replayed for n in range(20))
        term.type("still me")
        said = await peer.expect("message", text="still me")
        assert (said["name"], said["uid"]) == (term.name, session.uid)  # same person
        # No come-and-go: only that they were away for a while.
        seen = [f["event"] for f in peer.backlog if f["type"] == "presence"]
        assert seen == ["away", "back"]
        term.type("/quit")
        assert await term.exit_status() == 0
    finally:
        await term.close()


@pytest.mark.redis
async def test_terminal_client_shows_what_a_resume_could_not_read_once_the_server_is_back() -> None:
    """Back while Redis stalls: the replay cannot be read and the client says so; once Redis
    answers again it asks again, and shows what was said while it was away, each once, in
    order, under a line that says these are the earlier ones."""
    own = RedisServer().start()
    server = await start_server(broker=own.url())
    term = await Terminal.start(url(server))
    try:
        peer, session, transport = await _peer_and_session(server, term)
        os.killpg(term.proc.pid, signal.SIGSTOP)  # away (a laptop lid closed): no reconnecting
        try:
            transport.abort()  # the network drops
            await eventually(lambda: session.link is None, step=0.02)
            for n in range(1, 4):
                await peer.request({"type": "say", "text": f"away-{n}"}, "message")
            own.pause()
        finally:
            os.killpg(term.proc.pid, signal.SIGCONT)
        await term.expect("could not be read just now", timeout=30)
        os.killpg(term.proc.pid, signal.SIGSTOP)  # so "since" reaches it before the replay
        try:
            own.resume()
            await say_until_accepted(peer, "since")  # accepted once the server is back
        finally:
            os.killpg(term.proc.pid, signal.SIGCONT)
        await term.expect("-- caught up: what could not be read earlier is shown", timeout=30)
        screen = term.screen
        since = screen.index("<" + peer.name + "> since")
        header = screen.index("-- earlier, while you were away (it could not be read then):")
        positions = [screen.index(f"away-{n}") for n in range(1, 4)]
        assert since < header < positions[0] < positions[1] < positions[2]
        assert all(screen.count(f"away-{n}") == 1 for n in range(1, 4))
        assert screen.count("> since") == 1
        term.type("/quit")
        assert await term.exit_status() == 0
    finally:
        await term.close()
        await server.stop()
        own.resume()
        own.stop()


async def script(server: ChatServer, stdin: bytes) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatsupport", "connect", url(server),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=client_env(),
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), 30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert err == b"", err
    return proc.returncode or 0, out.decode()


async def test_without_a_terminal_it_sends_lines_and_prints_replies(server: ChatServer) -> None:
    peer = await TextClient.open(server.tcp_port)
    lines = "hello from a script\n/nick Script Bot\n/who\n//slashes\n  \nbye now\n"
    status, out = await script(server, lines.encode())
    assert status == 0
    shown = out.splitlines()
    assert shown[0].startswith("*** Welcome to ChatSupport")
    name = shown[0].split("You are ", 1)[1].split(", in #", 1)[0]
    assert f"<{name}> hello from a script" in shown
    assert "-- you are now Script Bot" in shown
    assert f"-- in #lobby (2): {peer.name}, Script Bot" in shown
    assert "<Script Bot> /slashes" in shown and "<Script Bot> bye now" in shown
    assert shown[-1] == "*** goodbye (quit)"
    got = [await peer.expect(lambda s: "Script Bot" in s or "script" in s) for _ in range(4)]
    assert got == [
        f"<{name}> hello from a script",
        f"-- {name} is now known as Script Bot in #lobby",
        "<Script Bot> /slashes",
        "<Script Bot> bye now",
    ]
    assert await peer.expect(lambda s: "left" in s) == "-- Script Bot left #lobby (1 here)"


async def test_without_a_terminal_it_prints_what_others_say(server: ChatServer) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatsupport", "connect", url(server),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=client_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = await asyncio.wait_for(proc.stdout.readline(), WAIT * 2)
        assert first.startswith(b"*** Welcome")
        peer = await TextClient.open(server.tcp_port)
        await peer.send("anyone reading?")
        while b"anyone reading?" not in (
            line := await asyncio.wait_for(proc.stdout.readline(), WAIT)
        ):
            pass
        assert line.decode().rstrip("\n") == f"<{peer.name}> anyone reading?"
        proc.stdin.close()  # EOF: the client settles, says goodbye and exits
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


async def test_bad_url_and_unreachable_server() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatsupport", "connect", "ftp://nowhere",
        stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=client_env(),
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2 and b"ws://" in err
    with contextlib.closing(__import__("socket").socket()) as probe:
        probe.bind(("127.0.0.1", 0))  # a port nobody listens on (bound, never listening)
        port = probe.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatsupport", "connect", f"ws://127.0.0.1:{port}/ws",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, env=client_env(),
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"!! cannot connect" in out


async def test_script_over_tls(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    server = await start_server(tls_cert=cert, tls_key=key)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chatsupport", "connect", f"wss://127.0.0.1:{server.http_port}/ws",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**client_env(), "SSL_CERT_FILE": cert},
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(b"private hello\n"), 30)
        assert proc.returncode == 0
        assert "> private hello" in out.decode() and "goodbye (quit)" in out.decode()
    finally:
        await server.stop()


async def test_terminal_client_survives_a_server_restart() -> None:
    server = await start_server()
    port = server.http_port
    term = await Terminal.start(url(server))
    restarted: ChatServer | None = None
    try:
        await server.stop()
        await term.expect("*** goodbye (server shutdown)")
        await term.expect("-- reconnecting in")
        restarted = await start_server(http_port=port)  # same address, sessions forgotten
        renamed = await term.expect("-- could not resume; you are now ")
        new_name = renamed.split("you are now ", 1)[1]
        peer = await TextClient.open(restarted.tcp_port)
        term.type("back again")
        assert await peer.expect(lambda s: "back again" in s) == f"<{new_name}> back again"
        assert "-- resumed (" not in term.screen
    finally:
        await term.close()
        if restarted is not None:
            await restarted.stop()
