"""The plain-text TCP interface: UTF-8 lines in, marked lines out (see docs/protocol.md).

Input is split on b"\n" only, so a UTF-8 character cut across reads is reassembled before
it is decoded. Lines are queued and handed to the core one at a time; a peer over its
flood budget is read later (the queue is paused, then the socket), as IRC servers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from typing import cast

from ..core import events as ev
from ..core import requests as rq
from ..core.session import Link
from .context import Edge, enable_keepalive
from .outbox import Outbox

log = logging.getLogger("chatsupport.tcp")

_HTTP = re.compile(rb"^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT|PRI) ")
_TLS = (b"\x16\x03",)
PROBE_WAIT = 0.15  # seconds to see whether the first bytes are HTTP or TLS
NOT_HERE = {
    "http": "!! This is ChatSupport's plain-text port (for nc or telnet); open the web page "
    "on its HTTP port instead.\n",
    "tls": "!! This port speaks plain text, not TLS; use nc or telnet, or the web page.\n",
}


class TextPeer(asyncio.Protocol):
    """One netcat/telnet connection; the core sees it as a Sink with interface "text"."""

    interface = "text"

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.transport: asyncio.Transport | None = None
        self.outbox: Outbox | None = None
        self.link: Link | None = None
        self.buffer = bytearray()
        self.lines: deque[str] = deque()
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.paused = False
        self.first = True
        self.ended = False

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        enable_keepalive(transport.get_extra_info("socket"))
        self.outbox = Outbox(
            transport, self.edge.flusher, self.edge.config.outbox_limit, self._too_slow
        )
        peer = transport.get_extra_info("peername")
        address_key = self.edge.addresses.of(str(peer[0]) if peer else "")
        refusal = self.edge.chat.admit(address_key)
        if refusal is not None:
            self.edge.chat.count("connections_refused")
            self.outbox.finish(f"!! {refusal.message}\n".encode())
            self.ended = True
            return
        self.task = asyncio.get_running_loop().create_task(self._run(address_key))

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return
        if self.first:
            self.first = False
            kind = "tls" if data.startswith(_TLS) else "http" if _HTTP.match(data) else None
            if kind:
                self._end(NOT_HERE[kind], "wrong_protocol")
                return
            self.wakeup.set()
        self.buffer += data
        self._split()
        if len(self.buffer) > self.edge.config.max_partial_line:
            self._end("!! no end of line after 64 KiB: closing the connection\n", "line_flood")

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("receive error uid=%s error=%s", self._uid(), type(exc).__name__)
        self.ended = True
        if self.outbox:
            self.outbox.lost()
        self.wakeup.set()

    # ---- Sink ------------------------------------------------------------------------------
    def send(self, event: ev.Event) -> None:
        if self.outbox is None or self.outbox.closed:
            return
        tag = ""
        if type(event) is ev.Message and self.link and event.room != self.link.session.current:
            tag = f"[#{event.room}] "
        data = self.edge.text.encode(event, tag)
        if data:
            self.outbox.push(data)

    def close(self, reason: str) -> None:
        self.ended = True
        if self.outbox:
            self.outbox.finish()
        self.wakeup.set()

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
                self.wakeup.set()
        if len(self.lines) >= 10 and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()  # the rest waits in the kernel: read later

    def _say(self, line: str) -> None:
        if self.outbox:
            self.outbox.push(line.encode())

    async def _run(self, address_key: str) -> None:
        chat = self.edge.chat
        try:
            # Browsers and TLS clients speak first; people with nc do not. Waiting a moment
            # before joining keeps stray HTTP/TLS probes out of the room entirely.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), PROBE_WAIT)
            if self.ended:
                return
            self.link = await chat.open(self, address_key)
            while not self.ended:
                if not self.lines:
                    self._resume_reading()
                    self.wakeup.clear()
                    await self.wakeup.wait()
                    continue
                request = rq.Say(text=self.lines[0])
                wait = chat.delay(self.link, request)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                self.lines.popleft()
                await chat.handle(self.link, request)
        except Exception:
            log.exception("error while serving uid=%s", self._uid())
        finally:
            if self.link:
                await chat.close(self.link, "disconnected", resumable=False)
            else:
                chat.release(address_key)  # admitted, never opened (a probe, an early close)
            if self.transport and not self.transport.is_closing():
                self.transport.close()

    def _resume_reading(self) -> None:
        if self.paused and self.transport and not self.ended:
            self.paused = False
            self.transport.resume_reading()

    # ---- endings ---------------------------------------------------------------------------
    def _end(self, line: str, reason: str) -> None:
        log.info("closing uid=%s reason=%s", self._uid(), reason)
        self.ended = True
        self.buffer.clear()
        if self.outbox:
            self.outbox.finish(line.encode())
        self.wakeup.set()

    def _too_slow(self) -> None:
        log.warning("slow peer disconnected uid=%s", self._uid())
        self.edge.chat.count("slow_disconnects")
        self._end("*** goodbye (too slow: you were not reading fast enough)\n", "too_slow")

    def _uid(self) -> str:
        return self.link.session.uid if self.link else "-"
