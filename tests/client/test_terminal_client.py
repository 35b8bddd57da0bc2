"""The terminal client as a person uses it (issue 17, item 3): in tmux, whose screen is the
real one (what `tmux capture-pane` shows), and in a pty. Real servers on 127.0.0.1, netcat
and WebSocket peers.

Clean Ctrl-C (goodbye, exit 0), secrets never shown nor kept, each line shown once,
timestamps, mentions highlighted, long lines wrapped and indented, one status line while
reconnecting, a summary after a resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

from chatsupport import ChatServer

from ..helpers import WAIT, TextClient, WsClient, start_server
from ..mod_helpers import LISTENER_TOKEN
from ..test_words_stay import listener
from .test_client import ANSI, Terminal, client_env, url

TIME = r"\d\d:\d\d "  # the timestamp every line starts with
WIDTH, HEIGHT = 100, 30
DEAD = "#{pane_dead} #{pane_dead_status}"  # tmux: whether the client ended, and how


class Tmux:
    """`chatsupport connect` in a tmux window of its own (a private tmux server, one socket
    per test): keys go in as typed, the screen comes back as a person sees it."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    @classmethod
    async def start(cls, url: str) -> Tmux:
        tmux = cls(f"chatsupport-test-{uuid.uuid4().hex[:12]}")
        env = client_env()
        client = shlex.join([sys.executable, "-m", "chatsupport", "connect", url])
        # The client starts once the window is ready (a key), as when a person types it.
        command = f"read -r ready && exec {client}"
        await tmux.tmux(
            "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(WIDTH), "-y",
            str(HEIGHT), command, ";", "set-option", "-t", "t", "remain-on-exit", "on",
            env=env,
        )  # fmt: skip
        try:
            await tmux.keys("Enter")
            screen = await tmux.wait_for(lambda s: "You are " in s and "#lobby> " in s)
            assert "connecting to" not in screen, screen  # the status line went, leaving nothing
        except BaseException:
            await tmux.close()
            raise
        return tmux

    async def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = await asyncio.create_subprocess_exec(
            "tmux", "-L", self.socket, *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 3 * WAIT)  # a loaded machine
        assert proc.returncode == 0, err
        return out.decode()

    async def screen(self, escapes: bool = False) -> str:
        """The window as shown, scrollback included; with `escapes`, its styles too."""
        return await self.tmux("capture-pane", "-p", "-J" if not escapes else "-e", "-S", "-")

    async def rows(self) -> list[str]:
        """The visible rows exactly as laid out (no joining of wrapped rows)."""
        return (await self.tmux("capture-pane", "-p")).splitlines()

    async def wait_for_rows(
        self, ready: Callable[[list[str]], bool], timeout: float = 10.0
    ) -> list[str]:
        """The visible rows once `ready` says so: a capture can fall between two writes of
        one redraw, so a layout is judged on what the screen settles to, not one snapshot."""

        async def rows_text() -> str:
            return "\n".join(await self.rows())

        text = await _poll(rows_text, lambda text: ready(text.split("\n")), timeout)
        return text.split("\n")

    async def wait_for(self, ready: Callable[[str], bool], timeout: float = 10.0) -> str:
        """The screen (with scrollback) once `ready` says so; bounded in time and count."""
        return await _poll(self.screen, ready, timeout)

    async def type(self, text: str, enter: bool = True) -> None:
        await self.tmux("send-keys", "-t", "t", "-l", text)
        if enter:
            await self.tmux("send-keys", "-t", "t", "Enter")

    async def keys(self, *keys: str) -> None:
        await self.tmux("send-keys", "-t", "t", *keys)

    async def exit_status(self) -> int:
        """Waits for the client to end; its exit status."""
        async with asyncio.timeout(10):
            for _ in range(1000):
                pane = await self.tmux("display", "-p", "-t", "t", DEAD)
                dead, status = pane.split()
                if dead == "1":
                    return int(status)
                await asyncio.sleep(0.05)
        raise AssertionError("still running")

    async def close(self) -> None:
        with contextlib.suppress(AssertionError, TimeoutError, OSError):
            socket = (await self.tmux("display", "-p", "#{socket_path}")).strip()
            await self.tmux("kill-server")  # our own tmux server only (its own socket)
            os.unlink(socket)


async def _poll(
    look: Callable[[], Awaitable[str]], ready: Callable[[str], bool], timeout: float
) -> str:
    """What `look` shows once `ready` says so; bounded in time and count."""
    seen = ""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            for _ in range(2000):
                seen = await look()
                if ready(seen):
                    return seen
                await asyncio.sleep(0.05)
    raise AssertionError(f"never shown; the screen was:\n{seen}")


def input_row(rows: list[str]) -> str:
    return next(row for row in reversed(rows) if row.startswith("#"))


def shows_input(line: str, screen: str) -> bool:
    return input_row(screen.splitlines()) == line


async def test_ctrl_c_says_goodbye_and_exits_0(server: ChatServer) -> None:
    term = await Terminal.start(url(server))
    try:
        peer = await TextClient.open(server.tcp_port)
        await term.expect(f"-- {peer.name} joined #lobby")
        os.write(term.master, b"half a line\x03")  # Ctrl-C, with words on the input line
        assert await peer.expect(lambda s: "left" in s) == f"-- {term.name} left #lobby (1 here)"
        assert await term.exit_status() == 0
        await term.expect("*** goodbye (quit)")
        assert "Traceback" not in term.screen and "Task exception" not in term.screen
    finally:
        await term.close()


async def test_ctrl_c_while_the_server_is_away_exits_0() -> None:
    server = await start_server()
    term = await Terminal.start(url(server))
    try:
        await server.stop()
        await term.expect("-- reconnecting in")
        os.write(term.master, b"words still waiting\r\x03")  # Enter, then Ctrl-C
        assert await term.exit_status() == 0
        await term.expect("-- not sent: words still waiting")  # to copy, before it goes
        assert "Traceback" not in term.screen
    finally:
        await term.close()


async def test_sigterm_and_a_script_interrupted_say_goodbye(server: ChatServer) -> None:
    peer = await TextClient.open(server.tcp_port)
    term = await Terminal.start(url(server))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatsupport", "connect", url(server),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=client_env(),
    )  # fmt: skip
    try:
        await peer.expect(lambda s: "joined" in s)
        await peer.expect(lambda s: "joined" in s)
        os.kill(term.proc.pid, signal.SIGTERM)  # the terminal window closes, say
        assert await term.exit_status() == 0
        assert "left #lobby" in await peer.expect(lambda s: "left" in s)
        proc.send_signal(signal.SIGINT)  # Ctrl-C on a script whose stdin is still open
        out, err = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0 and err == b""
        assert out.decode().splitlines()[-1] == "*** goodbye (quit)"
        assert "left #lobby (1 here)" in await peer.expect(lambda s: "left" in s)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await term.close()


async def test_auth_token_is_never_shown_nor_kept(staff_server: ChatServer) -> None:
    tmux = await Tmux.start(url(staff_server))
    try:
        await tmux.type("before the token")
        await tmux.wait_for(lambda s: "> before the token" in s)
        await tmux.type("/auth ", enter=False)
        for start in range(0, len(LISTENER_TOKEN), 9):  # typed in pieces, looked at each time
            piece = LISTENER_TOKEN[start : start + 9]
            stars = "#lobby> /auth " + "*" * len(LISTENER_TOKEN[: start + 9])
            await tmux.type(piece, enter=False)
            screen = await tmux.wait_for(partial(shows_input, stars))
            assert piece not in screen
        await tmux.keys("Enter")
        screen = await tmux.wait_for(lambda s: "you are signed in as" in s)
        assert "/auth" not in screen  # not left on the screen once sent
        await tmux.keys("Up")  # the history has the line before, never the token
        await tmux.wait_for(partial(shows_input, "#lobby> before the token"))
        await tmux.keys("Up", "C-u")
        await tmux.type("/who")  # a barrier: the keys were handled before this answer
        screen = await tmux.wait_for(lambda s: "-- in #lobby (1)" in s)
        assert LISTENER_TOKEN not in screen and LISTENER_TOKEN[:9] not in screen
    finally:
        await tmux.close()


async def test_lines_once_timestamped_wrapped_and_mentions_highlighted(
    server: ChatServer,
) -> None:
    tmux = await Tmux.start(url(server))
    try:
        me = re.search(r"You are (.+?), in #", await tmux.screen())
        assert me is not None
        name = me.group(1)
        peer = await TextClient.open(server.tcp_port)
        await tmux.type("said once")
        await peer.expect(lambda s: "said once" in s)
        words = [f"word{n:02d}" for n in range(40)]
        long = " ".join(words[:20]) + f" hello {name.lower()} " + " ".join(words[20:])
        await peer.send(long)
        await tmux.type("/who")  # a barrier: everything before it is on screen
        await tmux.wait_for(lambda s: "-- in #lobby (2)" in s)
        rows = await tmux.rows()
        assert sum("said once" in row for row in rows) == 1  # no prompt line plus echo
        assert any(re.fullmatch(rf"{TIME}<{name}> said once", row) for row in rows)
        start = next(i for i, row in enumerate(rows) if "word00" in row)
        prefix = f"<{peer.name}> "
        assert re.match(rf"{TIME}{re.escape(prefix)}word00 ", rows[start])
        wrapped = [rows[start]]
        indent = " " * (len("12:34 ") + len(prefix))
        for row in rows[start + 1 :]:
            if not row.startswith(indent):
                break
            assert row[len(indent)] != " "  # the text starts right under the text
            wrapped.append(row)
        assert len(wrapped) >= 3 and all(len(row) <= WIDTH for row in wrapped)
        text = " ".join(row.strip() for row in wrapped).split(prefix, 1)[1]
        assert text == long  # no word broken: joining rows at spaces gives it back
        styled = await tmux.screen(escapes=True)
        first = name.lower().split()[0]  # (the name itself may be wrapped onto two rows)
        mention = re.search(rf"\x1b\[[0-9;]*7[0-9;]*m{re.escape(first)}", styled)
        assert mention is not None  # our name, in reverse video
        assert not re.search(rf"\x1b\[[0-9;]*7[0-9;]*m{re.escape(name)}> said", styled)
    finally:
        await tmux.close()


async def test_one_status_line_while_reconnecting_then_a_summary() -> None:
    server = await start_server()
    port = server.http_port
    tmux = await Tmux.start(url(server))
    restarted: ChatServer | None = None
    try:
        await tmux.type("/join help")
        await tmux.wait_for(lambda s: "-- you are in #help" in s)
        await server.stop()
        await tmux.type("typed while away")
        attempt = re.compile(r"-- reconnecting in \d+s \(attempt (\d+)\) · 1 line waiting")
        await tmux.wait_for(lambda s: any(int(n) >= 3 for n in attempt.findall(s)), 30)

        def one_status_line_above_the_input(rows: list[str]) -> bool:
            status = [row for row in rows if "connecting" in row]  # updated in place
            return len(status) == 1 and rows.index(status[0]) == rows.index(input_row(rows)) - 1

        await tmux.wait_for_rows(one_status_line_above_the_input)
        restarted = await start_server(http_port=port)
        unsent = "Not sent: “typed while away”: you are no longer in #help"
        # The summary comes with the resume; the waiting line is tried (and refused) after it.
        screen = await tmux.wait_for(lambda s: "-- not resumed:" in s and unsent in s, 40)
        summary = next(line for line in screen.splitlines() if "-- not resumed:" in line)
        assert "you are in #lobby; no longer in #help" in summary
        assert screen.index(summary) < screen.index(unsent)
        # The status line goes once connected again.
        await tmux.wait_for_rows(lambda rows: not [row for row in rows if "reconnecting in" in row])
    finally:
        await tmux.close()
        await (restarted or server).stop()


class Relay:
    """A TCP relay in front of the server's HTTP port, so that a test can take the network
    away: `cut()` drops every connection through it and refuses new ones until `restore()`."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, 0
        self.listener: asyncio.Server | None = None
        self.ends: list[asyncio.StreamWriter] = []

    async def restore(self) -> None:
        self.listener = await asyncio.start_server(
            self._pipe, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self.listener.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.ends += [writer, up_writer]

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    def cut(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for end in self.ends:
            end.transport.abort()
        self.ends.clear()


async def test_summary_after_a_resume_names_rooms_kept_and_lost(staff_server: ChatServer) -> None:
    server = staff_server
    relay = Relay(server.http_port)
    await relay.restore()
    lis = await listener(server)
    peer = await WsClient.open(server.http_port)
    term = await Terminal.start(f"ws://127.0.0.1:{relay.port}/ws")
    try:
        term.type("/talk")
        room = str((await lis.expect("matched"))["room"])
        await peer.request({"type": "join", "room": "help"}, "joined")
        term.type("/join help")
        await peer.expect("presence", event="join", room="help")
        relay.cut()  # the network goes away, and stays away while the others talk
        await term.expect("-- connection lost")
        await peer.request({"type": "say", "room": "lobby", "text": "away one"}, "message")
        await peer.request({"type": "say", "room": "help", "text": "away two"}, "message")
        await peer.request({"type": "say", "room": "help", "text": "away three"}, "message")
        await lis.request({"type": "leave", "room": room}, "left")
        await relay.restore()
        summary = await term.expect("-- resumed (", timeout=30)
        assert re.fullmatch(
            rf"{TIME}-- resumed \(3 missed: 1 in #lobby, 2 in #help, shown above\); still in "
            r"#lobby, #help; no longer in the private chat",
            summary,
        ), summary
        before = term.screen.split("-- resumed (")[0]
        assert all(before.count(f"away {n}") == 1 for n in ("one", "two", "three"))
    finally:
        await term.close()
        relay.cut()


def test_terminal_rows_have_no_escapes_left() -> None:
    """The pty helper's ANSI pattern covers what the client writes (styled rows)."""
    from chatsupport.client.render import to_ansi

    styled = to_ansi([[("class:mention", "x"), ("class:time", "y")]])
    assert ANSI.sub("", styled).replace("\r", "") == "xy\n"
