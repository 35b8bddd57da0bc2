"""The plain-text TCP interface: UTF-8 lines in, marked lines out (see docs/protocol.md).

Only the framing and the rendering are here; the connection's life (admit, open, one
request at a time, close) is `driver.Peer`'s; `lines.split_lines` splits the input and
each line becomes a `say`. The text interface is paced: a peer over its flood budget is
read later (the queue waits, then the socket is paused), as IRC servers do.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable

from ..core import events as ev
from ..core import requests as rq
from ..core.batch import Batch
from ..units import size
from .context import Edge
from .driver import Failure, Peer
from .lines import Refusal, split_lines
from .telnet import IAC, Signal, Telnet
from .tls_door import TlsDoor

log = logging.getLogger("chatsupport.tcp")

_HTTP = re.compile(rb"^(GET|POST|HEAD|PUT|DELETE|OPTIONS|PATCH|CONNECT|PRI) ")
_TLS = b"\x16\x03"
PROBE_WAIT = 0.15  # seconds to see whether the first bytes are HTTP or TLS
NOT_HERE = {
    "http": "!! This is ChatSupport's plain-text port (for nc or telnet); open the web page "
    "on its HTTP port instead.\n",
    "tls": "!! This port speaks plain text, not TLS; use nc or telnet, or the web page.\n",
}


def tls_please(where: str) -> bytes:
    """What a plain-text client of the TLS-enabled text port is told, before the close."""
    return (
        f"!! This port speaks TLS, not plain text; use openssl s_client -quiet -connect {where} "
        "(or another TLS client), or the web page.\n"
    ).encode()


TOLD = {  # what a telnet command does, in a word to the person (EL and EC go unsaid)
    Signal.INTERRUPT: "-- line cleared; to leave, type /quit\n",
    Signal.ARE_YOU_THERE: "-- yes, still here\n",
}


class TextPeer(Peer):
    """One netcat/telnet connection: lines in, marked lines out; no echo, no resume."""

    interface = "text"
    echoes_own = False  # the person sees what they typed already
    can_resume = False  # nc has no way to come back: a dropped connection is a departure
    paced = True  # over budget: read later (paused from `pause_at` queued lines on)
    shares = True  # a room's batch is rendered once for all (`send_batch`)
    log = log
    __slots__ = ("buffer", "first", "telnet")

    def __init__(self, edge: Edge) -> None:
        super().__init__(edge)
        self.buffer = bytearray()
        self.first = True
        self.telnet: Telnet | None = None  # made at the first 0xFF byte: nc never needs it

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.admit(self.attach(transport)):
            return
        # Browsers and TLS clients speak first; people with nc do not. Waiting a moment
        # before joining keeps stray HTTP/TLS probes out of the room entirely.
        self.timer = asyncio.get_running_loop().call_later(PROBE_WAIT, self._open_now)

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return
        if self.first:
            self.first = False
            kind = "tls" if data.startswith(_TLS) else "http" if _HTTP.match(data) else None
            if kind:
                self._end(NOT_HERE[kind], "wrong_protocol")
                return
            self._open_now()
        if self.telnet is None and IAC not in data:
            self.buffer += data
        else:
            self._telnet(data)
        self._split()
        if len(self.buffer) > self.edge.config.max_partial_line:
            limit = size(self.edge.config.max_partial_line)
            self._end(f"!! no end of line after {limit}: closing the connection\n", "line_flood")
        self.kick()

    def _open_now(self) -> None:
        """Join now (the first bytes came, or the probe wait is over), if not yet done."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
            self.open()

    def _telnet(self, data: bytes) -> None:
        """Take telnet's commands out of the input: answer them, and do what they ask."""
        if self.telnet is None:
            self.telnet = Telnet()
        replies, signals = self.telnet.feed(data, self.buffer)
        if replies and self.outbox:
            self.outbox.push(replies)
        for signal in signals:
            if signal in TOLD:
                self._say(TOLD[signal])

    def input_ended(self) -> None:
        """A last line without its end of line is a line too (`printf 'hi' | nc -N`)."""
        if self.buffer:
            self.buffer += b"\n"
            self._split()

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

    def send_batch(self, batch: Batch) -> None:
        """A room's events of this turn, rendered once for every member it all goes to."""
        outbox = self.outbox
        if outbox is None or outbox.closed:
            return
        link = self.link
        room = batch.room
        tag = "" if link is None or room == link.session.current else f"[#{room}] "
        data = batch.cache.get(tag)
        if data is None:
            encode = self.edge.text.encode
            lines = [
                encode(event, tag if type(event) is ev.Message else "")
                for event, *_ in batch.events
            ]
            data = batch.cache[tag] = b"".join([line for line in lines if line])
        if data:
            outbox.put(data)

    def close(self, reason: str) -> None:
        self.ended = True
        if self.outbox:
            self.outbox.finish()

    # ---- input -----------------------------------------------------------------------------
    def _split(self) -> None:
        limit = self.edge.config.max_line_bytes
        backlog = self.edge.config.tcp_backlog_lines
        for line in split_lines(self.buffer, limit):
            if line is Refusal.TOO_LONG:
                self._say(f"!! line refused: longer than {limit} bytes\n")
            elif line is Refusal.NOT_UTF8:
                self._say("!! line refused: not valid UTF-8 text\n")
            elif len(self.inbox) >= backlog:
                self._say("!! line refused: too much input at once; slow down\n")
            elif line.strip():
                self.take(rq.Say(text=line))

    def _say(self, line: str) -> None:
        if self.outbox:
            self.outbox.push(line.encode())

    # ---- endings ---------------------------------------------------------------------------
    def refused(self, refusal: ev.Error) -> None:
        assert self.outbox is not None
        self.outbox.finish(self.edge.text.encode(refusal) or b"")  # why, and the help lines

    def fail(self, why: Failure) -> None:
        if why == "internal":
            self._end("!! internal error; sorry\n", "error")
        else:
            self._end("!! the server could not take you in right now; try again\n", "error")

    def too_slow(self) -> None:
        self._end("*** goodbye (too slow: you were not reading fast enough)\n", "too_slow")

    def _end(self, line: str, reason: str) -> None:
        log.info("closing uid=%s reason=%s", self.uid, reason)
        self.ended = True
        self.buffer.clear()
        self.inbox.clear()
        if self.outbox:
            self.outbox.finish(line.encode())


def text_port(edge: Edge, tls: ssl.SSLContext | None) -> Callable[[], asyncio.Protocol]:
    """The text port's protocol factory: `TextPeer`, behind a `TlsDoor` when TLS is on."""
    if tls is None:
        return lambda: TextPeer(edge)
    timeout = edge.config.handshake_timeout
    return lambda: TlsDoor(lambda: TextPeer(edge), tls, tls_please, timeout)
