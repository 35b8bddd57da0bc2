"""telnet on the text port (RFC 854/855/860): raw IAC bytes over a real socket, and the real
Debian `telnet` client driven through tmux (Ctrl-C, then a line, then incoming chat)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chatsupport import ChatServer
from chatsupport.transport.telnet import (
    AYT,
    DO,
    DONT,
    EC,
    EL,
    IAC,
    IP,
    SB,
    SE,
    SUB_LIMIT,
    TIMING_MARK,
    WILL,
    WONT,
    Signal,
    Telnet,
)

from ..helpers import WAIT, TextClient, require

ECHO, NAWS, TERMINAL_TYPE = 1, 31, 24


def cmd(*codes: int) -> bytes:
    return bytes((IAC, *codes))


# ---- the parser alone ------------------------------------------------------------------------
def feed_all(*chunks: bytes) -> tuple[bytes, bytes, list[Signal]]:
    telnet, buffer = Telnet(), bytearray()
    replies, signals = bytearray(), []
    for chunk in chunks:
        answer, told = telnet.feed(chunk, buffer)
        replies += answer
        signals += told
    return bytes(buffer), bytes(replies), signals


def test_options_are_refused_and_wont_dont_need_no_answer() -> None:
    text, replies, _ = feed_all(cmd(DO, ECHO) + cmd(WILL, NAWS) + cmd(WONT, 3) + cmd(DONT, 5))
    assert text == b""
    assert replies == cmd(WONT, ECHO) + cmd(DONT, NAWS)


def test_timing_mark_is_answered_will() -> None:
    assert feed_all(cmd(DO, TIMING_MARK))[1] == cmd(WILL, TIMING_MARK)


def test_iac_iac_is_one_literal_byte() -> None:
    assert feed_all(b"a" + cmd(IAC) + b"b")[0] == b"a\xffb"


def test_subnegotiation_is_skipped_with_its_escaped_iacs() -> None:
    sub = cmd(SB, NAWS, 0, 80, IAC, IAC, 24) + cmd(SE)
    assert feed_all(b"hi\n" + sub + b"there\n")[0] == b"hi\nthere\n"


def test_unterminated_subnegotiation_does_not_swallow_the_session() -> None:
    text = feed_all(cmd(SB, TERMINAL_TYPE) + b"x" * (SUB_LIMIT + 10) + b"later\n")[0]
    assert text.endswith(b"later\n")


def test_0xff_inside_typed_text_or_before_no_command_is_data() -> None:
    assert feed_all(b"bad \xff\xfe bytes\n")[0] == b"bad \xff\xfe bytes\n"
    assert feed_all(b"bad \xff\n")[0] == b"bad \xff\n"
    assert feed_all(b"bad \xff", b"\n")[0] == b"bad \xff\n"


def test_commands_split_across_reads_byte_by_byte() -> None:
    stream = b"one\n" + cmd(DO, ECHO) + cmd(SB, 1, 2) + cmd(SE) + b"tw" + cmd(EC) + b"wo\n"
    text, replies, _ = feed_all(*(bytes((b,)) for b in stream))
    assert (text, replies) == (b"one\ntwo\n", cmd(WONT, ECHO))


def test_interrupt_drops_only_the_unfinished_line() -> None:
    text, replies, signals = feed_all(b"kept\nhalf a li", cmd(IP) + cmd(DO, TIMING_MARK) + b"new\n")
    assert text == b"kept\nnew\n"
    assert replies == cmd(WILL, TIMING_MARK)
    assert signals == [Signal.INTERRUPT]


def test_erase_character_takes_a_whole_utf8_character_and_erase_line_the_rest() -> None:
    assert feed_all("café".encode() + cmd(EC) + b"e\n")[0] == b"cafe\n"
    assert feed_all(b"done\n" + cmd(EC) + b"x" + cmd(EL) + b"y\n")[0] == b"done\ny\n"


# ---- raw IAC bytes over a real socket ----------------------------------------------------------
async def read_until(client: TextClient, wanted: bytes, seen: bytearray) -> None:
    """Raw bytes into `seen` until `wanted` is among them (bounded)."""
    async with asyncio.timeout(WAIT):
        while wanted not in seen:
            chunk = await client.reader.read(4096)
            assert chunk, f"closed before {wanted!r}; got {bytes(seen)!r}"
            seen += chunk


async def test_negotiation_is_answered_and_the_line_still_arrives(server: ChatServer) -> None:
    telnet, other = [await TextClient.open(server.tcp_port) for _ in range(2)]
    naws = cmd(SB, NAWS, 0, 80, 0, 24) + cmd(SE)
    await telnet.send(cmd(DO, ECHO) + cmd(WILL, NAWS) + naws + b"hello from telnet\r\n")
    seen = bytearray()
    await read_until(telnet, cmd(WONT, ECHO) + cmd(DONT, NAWS), seen)
    assert await other.expect(lambda s: "hello" in s) == f"<{telnet.name}> hello from telnet"


async def test_ctrl_c_clears_the_line_and_the_session_stays_live(server: ChatServer) -> None:
    telnet, other = [await TextClient.open(server.tcp_port) for _ in range(2)]
    # What Debian's telnet sends for Ctrl-C: IAC IP, then IAC DO TIMING-MARK (it then shows
    # nothing until the mark is answered); here cut into pieces across reads.
    await telnet.send(b"half a li")
    for piece in (cmd(), bytes((IP, IAC)), bytes((DO,)), bytes((TIMING_MARK,))):
        await telnet.send(piece)
    seen = bytearray()
    await read_until(telnet, cmd(WILL, TIMING_MARK), seen)
    await read_until(telnet, b"-- line cleared", seen)
    await telnet.send(b"a fresh line\r\n")
    assert await other.expect(lambda s: "fresh" in s) == f"<{telnet.name}> a fresh line"
    await other.send("still hearing you")  # incoming chat is shown after Ctrl-C
    await read_until(telnet, f"<{other.name}> still hearing you".encode(), seen)


async def test_are_you_there_is_answered(server: ChatServer) -> None:
    telnet = await TextClient.open(server.tcp_port)
    await telnet.send(cmd(AYT))
    assert await telnet.line() == "-- yes, still here"


async def test_a_literal_0xff_is_data_and_refused_as_such(server: ChatServer) -> None:
    telnet, other = [await TextClient.open(server.tcp_port) for _ in range(2)]
    await telnet.send(b"odd " + cmd(IAC) + b" byte\r\n")
    assert (
        await telnet.expect(lambda s: s.startswith("!!")) == "!! line refused: not valid UTF-8 text"
    )
    await telnet.send(b"fine again\r\n")
    assert await other.expect(lambda s: "fine" in s) == f"<{telnet.name}> fine again"


# ---- the real telnet client, in tmux -----------------------------------------------------------
class Tmux:
    """A private tmux server (its own socket), so that stopping it stops only what we began."""

    def __init__(self) -> None:
        self.socket = f"chatsupport-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-J", "-t", "t")

    async def wait_for(self, found: Callable[[str], bool]) -> str:
        for _ in range(200):
            screen = self.screen()
            if found(screen):
                return screen
            await asyncio.sleep(0.05)
        raise AssertionError(f"never shown; the screen:\n{self.screen()}")


@contextmanager
def tmux_session(command: str) -> Iterator[Tmux]:
    tmux = Tmux()
    tmux.run("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", command)
    try:
        yield tmux
    finally:
        tmux.run("kill-server")


async def test_real_telnet_ctrl_c_then_a_line(server: ChatServer) -> None:
    require("tmux")
    require("telnet")
    other = await TextClient.open(server.tcp_port)
    with tmux_session(f"telnet 127.0.0.1 {server.tcp_port}") as tmux:
        screen = await tmux.wait_for(lambda s: "Type /help" in s)
        name = screen.split("You are ", 1)[1].split(",", 1)[0]
        await other.expect(lambda s: s.startswith(f"-- {name} joined"))
        tmux.run("send-keys", "-t", "t", "-l", "never sent")
        tmux.run("send-keys", "-t", "t", "C-c")
        await tmux.wait_for(lambda s: "-- line cleared" in s)
        tmux.run("send-keys", "-t", "t", "-l", "after ctrl-c")
        tmux.run("send-keys", "-t", "t", "Enter")
        assert await other.expect(lambda s: s.startswith(f"<{name}>")) == f"<{name}> after ctrl-c"
        await other.send("can you still read me?")
        await tmux.wait_for(lambda s: f"<{other.name}> can you still read me?" in s)
