"""The plain-text TCP interface: UTF-8 lines in, marked lines out (see docs/protocol.md).

Input is split on b"\\n" only, so a UTF-8 character cut across reads is reassembled before
it is decoded. Lines are queued and handed to the core one at a time; a peer over its
flood budget is read later (the queue waits, then the socket is paused), as IRC servers
do. An idle connection holds no task: one is started only while there is input to handle.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from typing import Any

from ..core import events as ev
from ..core import requests as rq
from ..core.session import Link
from ..units import size
from .context import Edge
from .outbox import Outbox

log = logging.getLogger("chatsupport.tcp")

_HTTP = re.compile(rb"^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT|PRI) ")
_TLS = b"\x16\x03"
PROBE_WAIT = 0.15  # seconds to see whether the first bytes are HTTP or TLS
PAUSE_AT = 10  # queued lines at which the socket stops being read
NOT_HERE = {
    "http": "!! This is ChatSupport's plain-text port (for nc or telnet); open the web page "
    "on its HTTP port instead.\n",
    "tls": "!! This port speaks plain text, not TLS; use nc or telnet, or the web page.\n",
}


class TextPeer(asyncio.Protocol):
    """One netcat/telnet connection; the core sees it as a Sink with interface "text"."""

    interface = "text"
    __slots__ = (
        "address_key",
        "admitted",
        "buffer",
        "edge",
        "ended",
        "first",
        "lines",
        "link",
        "opening",
        "outbox",
        "paused",
        "task",
        "transport",
    )

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.transport: asyncio.Transport | None = None
        self.outbox: Outbox | None = None
        self.link: Link | None = None
        self.address_key = ""
        self.admitted = False  # holds one of the address's connection slots until opened
        self.buffer = bytearray()
        self.lines: list[str] = []  # at most tcp_backlog_lines; a deque costs 600 B idle
        self.task: asyncio.Task[None] | None = None
        self.opening: asyncio.TimerHandle | None = None
        self.paused = False
        self.first = True
        self.ended = False

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport, self.outbox, address = self.edge.attach(transport, self._too_slow)
        self.address_key = self.edge.addresses.of(address)
        refusal = self.edge.chat.admit(self.address_key)
        if refusal is not None:
            self.edge.chat.count("connections_refused")
            self.outbox.finish(f"!! {refusal.message}\n".encode())
            self.ended = True
            return
        self.admitted = True
        # Browsers and TLS clients speak first; people with nc do not. Waiting a moment
        # before joining keeps stray HTTP/TLS probes out of the room entirely.
        self.opening = asyncio.get_running_loop().call_later(PROBE_WAIT, self._open)

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return
        if self.first:
            self.first = False
            kind = "tls" if data.startswith(_TLS) else "http" if _HTTP.match(data) else None
            if kind:
                self._end(NOT_HERE[kind], "wrong_protocol")
                return
            self._open()
        self.buffer += data
        self._split()
        if len(self.buffer) > self.edge.config.max_partial_line:
            limit = size(self.edge.config.max_partial_line)
            self._end(f"!! no end of line after {limit}: closing the connection\n", "line_flood")
        self._kick()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("receive error uid=%s error=%s", self._uid(), type(exc).__name__)
        self.ended = True
        if self.opening:
            self.opening.cancel()
        if self.outbox:
            self.outbox.lost()
        if self.task is None:
            self._spawn(self._finish())

    # ---- Sink ------------------------------------------------------------------------------
    def send(self, event: ev.Event) -> None:
        outbox = self.outbox
        if outbox is None or outbox.closed:
            return
        tag = ""
        if type(event) is ev.Message:
            link = self.link
            if link is not None and event.room != link.session.current:
                tag = f"[#{event.room}] "
        data = self.edge.text.encode(event, tag)
        if data:
            outbox.push(data)

    def close(self, reason: str) -> None:
        self.ended = True
        if self.outbox:
            self.outbox.finish()

    # ---- input -----------------------------------------------------------------------------
    def _split(self) -> None:
        limit = self.edge.config.max_line_bytes
        while (end := self.buffer.find(b"\n")) >= 0:
            raw = bytes(self.buffer[:end]).removesuffix(b"\r")
            del self.buffer[: end + 1]
            if len(raw) > limit:
                self._say(f"!! line refused: longer than {limit} bytes\n")
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                self._say("!! line refused: not valid UTF-8 text\n")
                continue
            if len(self.lines) >= self.edge.config.tcp_backlog_lines:
                self._say("!! line refused: too much input at once; slow down\n")
                continue
            if line.strip():
                self.lines.append(line)
        if len(self.lines) >= PAUSE_AT and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()  # the rest waits in the kernel: read later

    def _say(self, line: str) -> None:
        if self.outbox:
            self.outbox.push(line.encode())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self.task = asyncio.get_running_loop().create_task(work)

    def _open(self) -> None:
        if self.opening is not None:
            self.opening.cancel()
            self.opening = None
            self._spawn(self._join())

    def _kick(self) -> None:
        """Start handling queued lines, unless that is already under way."""
        if self.task is None and self.link is not None and self.lines:
            self._spawn(self._drain())

    async def _join(self) -> None:
        try:
            if not self.ended:
                self.link = await self.edge.chat.open(self, self.address_key)
        except Exception:
            log.exception("could not open uid=%s", self._uid())
            self._end("!! the server could not take you in right now; try again\n", "error")
        self.task = None
        if self.ended:
            await self._finish()
        else:
            self._kick()

    async def _drain(self) -> None:
        chat = self.edge.chat
        assert self.link is not None
        try:
            while self.lines and not self.ended:
                request = rq.Say(text=self.lines[0])
                wait = chat.delay(self.link, request)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                del self.lines[0]
                await chat.handle(self.link, request)
        except Exception:
            log.exception("error while serving uid=%s", self._uid())
            self._end("!! internal error; sorry\n", "error")
        self.task = None
        if self.ended:
            await self._finish()
        elif self.paused and self.transport:
            self.paused = False
            self.transport.resume_reading()

    async def _finish(self) -> None:
        """The connection is over: the person leaves (the text interface has no resume)."""
        self.task = None
        if self.link is not None:
            await self.edge.chat.close(self.link, "disconnected", resumable=False)
        elif self.admitted:  # never opened (a probe, an early close): give the slot back
            self.edge.chat.release(self.address_key)
        self.admitted = False

    # ---- endings ---------------------------------------------------------------------------
    def _end(self, line: str, reason: str) -> None:
        log.info("closing uid=%s reason=%s", self._uid(), reason)
        self.ended = True
        self.buffer.clear()
        self.lines.clear()
        if self.outbox:
            self.outbox.finish(line.encode())

    def _too_slow(self) -> None:
        log.warning("slow peer disconnected uid=%s", self._uid())
        self.edge.chat.count("slow_disconnects")
        self._end("*** goodbye (too slow: you were not reading fast enough)\n", "too_slow")

    def _uid(self) -> str:
        return self.link.session.uid if self.link else "-"
