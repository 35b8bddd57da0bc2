"""A peer that closes its side of the connection (`nc -N`, `shutdown(SHUT_WR)`) after its
input: every line it sent is handled in order at its budget's pace, or the rest is refused in
one line it can read; then the server closes, and the person leaves (a text one) or is away
for a resume (an IRC one), as after any close (docs/protocol.md, "Closing your side first").

The budgets here are the public ones sped up (same burst, a faster rate) so that pacing really
happens within a test's time: a flood of lines waits for the budget, it is not refused."""

from __future__ import annotations

import asyncio
import re
import subprocess
from contextlib import suppress

import pytest

from chatsupport import ChatServer, Config

from ..helpers import TextClient, require, start_server
from ..ircraw import IrcClient

DEFAULTS = Config()
PACED = {  # the public burst, a rate fast enough for a test; probation halves both
    "msg_rate": 20.0,
    "msg_burst": DEFAULTS.msg_burst,
    "max_conns_per_address": DEFAULTS.max_conns_per_address,
}
NEWCOMERS = {"probation_seconds": DEFAULTS.probation_seconds}
UNSENT = re.compile(r"^!! (\d+) lines? not sent: you closed your side")


async def half_closed(port: int, data: bytes) -> list[str]:
    """Connect, send `data`, close our side (shutdown(SHUT_WR)), and read every line the
    server writes until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        async with asyncio.timeout(60):
            raw = await reader.read()  # to the server's close
        return raw.decode().splitlines()
    finally:
        writer.close()
        with suppress(Exception):
            await writer.wait_closed()


async def seen_until_gone(observer: TextClient, name: str, gone: str = "left #lobby") -> list[str]:
    """What `name` said in the observer's room, in order, up to `name` leaving (or `gone`)."""
    said: list[str] = []
    async with asyncio.timeout(60):
        while not (line := await observer.line(60)).startswith(f"-- {name} {gone}"):
            if line.startswith(f"<{name}> "):
                said.append(line.removeprefix(f"<{name}> "))
    return said


def name_in(welcome: str) -> str:
    assert welcome.startswith("*** Welcome"), welcome
    return welcome.split("You are ", 1)[1].split(",", 1)[0]


def check_sent(sent: list[str], output: list[str], said: list[str]) -> None:
    """Every line arrived, in order, or a prefix did and the sender read how many did not."""
    refusals = [line for line in output if line.startswith("!!")]
    if not refusals:
        assert said == sent
        return
    assert len(refusals) == 1, refusals
    match = UNSENT.match(refusals[0])
    assert match, refusals
    assert said == sent[: len(sent) - int(match[1])]
    assert said  # the budget's burst, at least, went through


@pytest.mark.parametrize("probation", [False, True], ids=["regular", "newcomer"])
@pytest.mark.parametrize("count", [1, 6, 9, 40])
async def test_every_line_before_a_half_close_arrives_in_order(count: int, probation: bool) -> None:
    server = await start_server(**PACED, **(NEWCOMERS if probation else {"probation_seconds": 0}))
    try:
        observer = await TextClient.open(server.tcp_port)
        sent = [f"line {n} of {count}" for n in range(count)]
        output = await half_closed(server.tcp_port, "".join(f"{s}\n" for s in sent).encode())
        name = name_in(output[0])
        said = await seen_until_gone(observer, name)
        check_sent(sent, output, said)
        assert said == sent  # a minute is plenty at this pace: nothing was refused
    finally:
        await server.stop()


async def test_lines_past_the_half_close_bound_are_refused_with_their_count() -> None:
    # A newcomer at 1 line/s after a burst of 4, given 1 s after closing: of 9 lines (all read
    # with the close: fewer than the driver's `pause_at`), the last ones would wait too long.
    server = await start_server(**{**PACED, "msg_rate": 2.0}, **NEWCOMERS, half_close_seconds=1.0)
    try:
        observer = await TextClient.open(server.tcp_port)
        sent = [f"line {n}" for n in range(9)]
        output = await half_closed(server.tcp_port, "".join(f"{s}\n" for s in sent).encode())
        said = await seen_until_gone(observer, name_in(output[0]))
        check_sent(sent, output, said)
        assert len(said) < len(sent)  # so the refusal was read, and its count checked
        assert "in 1 s" in next(line for line in output if line.startswith("!!"))
    finally:
        await server.stop()


async def test_a_last_line_without_its_end_of_line_is_sent_too() -> None:
    server = await start_server(**PACED, probation_seconds=0)
    try:
        observer = await TextClient.open(server.tcp_port)
        output = await half_closed(server.tcp_port, b"first\nlast, no newline")
        said = await seen_until_gone(observer, name_in(output[0]))
        assert said == ["first", "last, no newline"]
        assert not [line for line in output if line.startswith("!!")]
    finally:
        await server.stop()


async def test_a_half_close_before_saying_anything_is_a_close() -> None:
    """Nothing sent, nothing to answer: closed at once, never in the room (no ghost)."""
    server = await start_server(**PACED, probation_seconds=0)
    try:
        observer = await TextClient.open(server.tcp_port)
        assert await half_closed(server.tcp_port, b"") == []
        await observer.send("/who")
        before = await observer.expect(lambda line: line.startswith("-- in #lobby"))
        assert before == f"-- in #lobby (1): {observer.name}"
    finally:
        await server.stop()


async def test_nc_dash_n_delivers_every_line() -> None:
    """The real netcat, as the issue reported it: nine lines from a newcomer, all in order."""
    nc = require("nc")
    server = await start_server(**PACED, **NEWCOMERS)
    try:
        observer = await TextClient.open(server.tcp_port)
        sent = [f"nc line {n}" for n in range(9)]
        output = await run_nc(nc, server, "".join(f"{s}\n" for s in sent).encode())
        said = await seen_until_gone(observer, name_in(output[0]))
        check_sent(sent, output, said)
        assert said == sent
    finally:
        await server.stop()


async def run_nc(nc: str, server: ChatServer, data: bytes) -> list[str]:
    """`nc -N` with `data` on its input (it half-closes after it), stopped by its PID."""
    process = await asyncio.create_subprocess_exec(
        nc, "-N", "127.0.0.1", str(server.tcp_port),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(data), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    return out.decode().splitlines()


async def test_an_irc_client_that_half_closes_without_quit_is_answered_then_away() -> None:
    server = await start_server(**PACED, **NEWCOMERS)
    try:
        observer = await TextClient.open(server.tcp_port)
        client = await IrcClient.connect(server.irc_port, "Closer")
        sent = [f"irc line {n}" for n in range(9)]
        await client.send_lines(*(f"PRIVMSG #lobby :{s}" for s in sent), "PING :last")
        client.writer.write_eof()
        lines = []
        async with asyncio.timeout(60):
            while raw := await client.reader.readline():
                lines.append(raw.decode().rstrip("\r\n"))
        assert "PONG" in lines[-1] and lines[-1].endswith("last")  # answered, in order, last
        assert not [line for line in lines if " NOTICE " in line or "ERROR" in line]
        # Closed as any connection: away, resumable with its key (a FIN is no QUIT).
        said = await seen_until_gone(observer, client.nick, gone="is away")
        assert said == sent
    finally:
        await server.stop()
