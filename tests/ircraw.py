"""A raw IRC client for tests: lines out as typed, lines in parsed (ircproto's parser)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from chatsupport.transport.ircproto.message import Line, parse

from .helpers import WAIT, TextClient

_pings = itertools.count()


class IrcClient(TextClient):
    """An IRC connection; `expect` takes a command (and parameters to match) or a test."""

    nick = ""

    @classmethod
    async def connect(
        cls,
        port: int,
        nick: str = "Bob",
        *,
        caps: str = "",
        password: str | None = None,
        register: bool = True,
        local_addr: str | None = None,
    ) -> IrcClient:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, limit=1 << 20, local_addr=(local_addr, 0) if local_addr else None
        )
        client = cls(reader, writer)
        if register:
            await client.register(nick, caps=caps, password=password)
        return client

    async def register(self, nick: str, *, caps: str = "", password: str | None = None) -> None:
        lines = [f"PASS {password}"] if password else []
        if caps:
            lines += ["CAP LS 302", f"CAP REQ :{caps}"]
        lines += [f"NICK {nick}", "USER u 0 * :Test"]
        if caps:
            lines += ["CAP END"]
        await self.send_lines(*lines)
        welcome = await self.expect("001")
        self.nick = welcome.params[0]
        await self.expect("366")  # #lobby's names: the burst is over

    async def register_for_key(self, nick: str) -> str:
        """Register (no CAP) and return the `resume:` key the server gives."""
        await self.send_lines(f"NICK {nick}", "USER u 0 * :x")
        key = ""
        while (line := await self.read()).command != "366":
            if line.command == "NOTICE" and "resume:" in line.params[1]:
                key = line.params[1].split("resume:")[1].split()[0]
        assert key
        self.nick = nick
        return key

    async def send_lines(self, *lines: str | bytes) -> None:
        for line in lines:
            data = line if isinstance(line, bytes) else line.encode()
            self.writer.write(data + b"\r\n")
        await self.writer.drain()

    async def read(self, timeout: float = WAIT) -> Line:
        return parse(await self.line(timeout))

    answers_pings = True  # as every IRC client does; False: one whose network has gone
    unconfirmed = False  # a message has come since the last PING this client answered

    async def line(self, timeout: float = WAIT) -> str:
        """The next line; the server's PINGs are answered on the way, as clients do."""
        while (line := await self._next(timeout)) is None:
            pass
        return line

    async def until_confirmed(self) -> list[Line]:
        """Read on until the server's PING after the last message has come and been answered
        (at most 2 s while messages flow): the server then knows all it wrote was read, and a
        resume starts after it. The lines on the way."""
        lines: list[Line] = []
        while self.unconfirmed and len(lines) < 10000:
            if (line := await self._next(WAIT)) is not None:
                lines.append(parse(line))
        return lines

    async def _next(self, timeout: float) -> str | None:
        """One line, or None for a server PING this client answered."""
        line = (await super().line(timeout)).rstrip("\r")
        if line.startswith("PING ") and self.answers_pings:
            await self.send_lines(f"PONG :{parse(line).params[-1]}")
            self.unconfirmed = False
            return None
        if " PRIVMSG " in line:
            self.unconfirmed = True
        return line

    async def expect(  # type: ignore[override]
        self,
        what: str | Callable[[Line], bool],
        *params: str,
        timeout: float = WAIT,
    ) -> Line:
        """The first line with this command (and these first parameters after the target
        for numerics, or from the start otherwise); lines before it are skipped."""
        if callable(what):
            test = what
        else:

            def test(line: Line) -> bool:
                got = line.params[1:] if what.isdigit() else line.params
                return line.command == what and got[: len(params)] == list(params)

        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            line = await self.read(max(left, 0.01))
            if test(line):
                return line

    async def sync(self) -> list[Line]:
        """Every line before the answer to a PING sent now."""
        token = f"sync{next(_pings)}"
        await self.send_lines(f"PING :{token}")
        seen: list[Line] = []
        for _ in range(10000):
            line = await self.read()
            if line.command == "PONG" and line.params[-1] == token:
                return seen
            seen.append(line)
        raise AssertionError("no PONG")
