"""One connection's life, the same for every transport: admit -> open -> requests -> close.

A transport subclasses `Peer` and keeps only what is its own: framing (its
`asyncio.Protocol` methods turn bytes into Requests and call `take` and `kick`), rendering
(`send` and `close`, the Sink the core writes to, and the three endings below), and its
capabilities (`echoes_own`, `can_resume`, read by the core). Everything else is here, once:

- **admit**: the address's connection slot is taken (`admit`) and given back at the end;
- **open**: `Chat.open` runs in a task, after `resume_token` when the client may come back;
- **handle**: decoded requests wait in `inbox` and are handled one at a time, in order. A
  `paced` transport (the text interface) reads a peer over its flood budget later: the
  request waits, and from `pause_at` queued requests on the socket is not read; an
  unpaced one (WebSocket) hands every request to the core at once, which answers
  `rate_limited`. A transport may queue a step of its own between requests (`Work`: IRC
  reads history for CHATHISTORY), run in turn and free of the budget;
- **drain**: the core may ask to go on once the peer has read what is queued (`when_drained`,
  a resume's next page). Until then the connection's later requests wait, so replies keep
  the order they were asked in; the outbox says when (`writable`, from `resume_writing`);
- **close**: `finishing` (the transport's last step), then `Chat.close` (the core keeps
  the session when the sink `can_resume`), or the slot is released when the person never
  got in;
- **half-close**: a peer that closes its side (`nc -N`, `shutdown(SHUT_WR)`) sends nothing
  more but may still read. What it sent is handled in order, at its budget's pace, for up
  to `half_close_seconds`; the rest is refused in one error it can read; then the
  connection closes after the last answer and ends as any close does. (A FIN is the same
  whether the peer half-closed or closed: not a quit, so an IRC session stays resumable.)
- **errors**: one policy. The broker being away when opening is `fail("unavailable")`; any
  other failure is logged with its traceback and is `fail("not_opened")` or, once serving,
  `fail("internal")` (the session is then not resumable). Each transport words these.

An idle connection holds no task: one runs only while there is something to do (opening,
queued requests, closing), so ten thousand quiet peers cost no coroutine frames.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, Literal

from ..core import events as ev
from ..core import requests as rq
from ..core.batch import Batch
from ..core.ports import BrokerUnavailable
from ..core.session import Link
from .context import Edge
from .outbox import Outbox

# Why a connection could not be served: the broker is away, opening failed, handling failed.
Failure = Literal["unavailable", "not_opened", "internal"]
# A step of the transport's own, run in turn between requests (IRC reads history with it).
Work = Callable[[], Awaitable[None]]


class Peer(asyncio.Protocol):
    """One connection as the core sees it (a Sink), driven the same way on every transport."""

    interface: ClassVar[str]  # a label for metrics (`text`, `json`); behaviour follows below
    echoes_own: ClassVar[bool]  # gets its own room messages back, with their ref
    can_resume: ClassVar[bool]  # its session outlives the connection
    paced: ClassVar[bool] = False  # over budget: read later (True) or let the core refuse
    shares: ClassVar[bool] = False  # takes a room's batch whole (`send_batch`)
    pause_at: ClassVar[int] = 10  # paced: queued requests at which the socket is not read
    log: ClassVar[logging.Logger]

    __slots__ = (
        "address_key",
        "client_key",
        "edge",
        "ended",
        "eof_by",
        "inbox",
        "link",
        "outbox",
        "task",
        "timer",
        "transport",
        "waiting",
    )

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.transport: asyncio.Transport | None = None
        self.outbox: Outbox | None = None
        self.link: Link | None = None
        self.address_key = ""  # set while this connection holds one of the address's slots
        self.client_key = ""  # the keyed hash of the id the client holds, if it sent one
        # Decoded requests, or the error a refused one gets (answered in order); short, and a
        # deque costs 600 B idle.
        self.inbox: list[rq.Request | ev.Error | Work] = []
        self.task: asyncio.Task[None] | None = None  # only while there is work: none idle
        self.timer: asyncio.TimerHandle | None = None  # the transport's one pending timer
        self.waiting: Work | None = None  # the core's step once the outbox drains (`when_drained`)
        self.ended = False
        self.eof_by: float | None = None  # half-closed: loop time its input must be handled by

    # ---- what each transport says ----------------------------------------------------------
    def send(self, event: ev.Event) -> None:
        """Sink: render `event` and queue it on the outbox (never blocks)."""
        raise NotImplementedError

    def send_batch(self, batch: Batch) -> None:
        """Sink: every event of a room's batch, when `shares`; one at a time otherwise."""
        for event, *_ in batch.events:
            self.send(event)

    def close(self, reason: str) -> None:
        """Sink: end the connection after what is queued."""
        raise NotImplementedError

    def refused(self, refusal: ev.Error) -> None:
        """Admission refused (too many connections, banned): say why and close."""
        raise NotImplementedError

    def fail(self, why: Failure) -> None:
        """The server could not serve this connection: say so (or not) and close."""
        raise NotImplementedError

    def too_slow(self) -> None:
        """The outbox overflowed: a last word past the outbox, and close."""
        raise NotImplementedError

    async def resume_token(self) -> str | None:
        """The token this connection resumes with, known before opening (or None)."""
        return None

    # ---- Sink: pacing what the server sends in bulk ----------------------------------------
    @property
    def backlogged(self) -> bool:
        """Sink: more than the outbox's low-water mark waits for this peer."""
        return self.outbox is None or self.outbox.backlogged

    def when_drained(self, step: Work) -> None:
        """Sink: run `step` once the peer has read what waits down to the low-water mark,
        before this connection's later requests (which wait for it). Never, if it ends first."""
        if self.outbox is None or self.ended:
            return
        self.waiting = step
        self.outbox.when_drained(self._drained)

    def _drained(self) -> None:
        step, self.waiting = self.waiting, None
        if step is not None and not self.ended:
            self.inbox.insert(0, step)  # before any request that came meanwhile
            self.kick()

    async def finishing(self) -> None:
        """The connection is over, the session not closed yet: the transport's last step."""

    def input_ended(self) -> None:
        """The peer sent its last byte: take what is left in the framing, if anything."""

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def attach(self, transport: asyncio.BaseTransport) -> str:
        """`connection_made`'s common part: a bounded outbox; returns the peer address."""
        self.transport, self.outbox, address = self.edge.attach(transport, self._too_slow)
        return address

    def pause_writing(self) -> None:
        """The transport's buffer passed its high mark (the outbox's low-water mark)."""
        if self.outbox is not None:
            self.outbox.full()

    def resume_writing(self) -> None:
        """The transport's buffer drained below its low mark (set by the outbox)."""
        if self.outbox is not None:
            self.outbox.resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.log.info("receive error uid=%s error=%s", self.uid, type(exc).__name__)
        self.ended = True
        self.waiting = None
        if self.timer is not None:
            self.timer.cancel()
        if self.outbox is not None:
            self.outbox.lost()
        if self.task is None:
            self._spawn(self._finish())

    def eof_received(self) -> bool | None:
        """The peer closed its side: keep ours open (True) while its lines are answered,
        then close after the last. Nobody in yet (and no opening under way) has nothing to
        be answered, and TLS cannot half-close (close_notify ends both ways): those close."""
        transport = self.transport
        if self.eof_by is not None:
            return True  # told twice (reading resumed after the end): nothing new
        if self.ended or transport is None or transport.get_extra_info("sslcontext") is not None:
            return False
        if self.link is None and self.task is None:
            return False
        self.eof_by = asyncio.get_running_loop().time() + self.edge.config.half_close_seconds
        self.input_ended()
        self.inbox.append(self._end_of_input)  # not `take`: there is no more to read or pause
        self.kick()
        return True

    # ---- the life of a connection ----------------------------------------------------------
    def admit(self, address: str, client_id: str = "") -> bool:
        """Take one of the address's connection slots, or say why not and end. `client_id`:
        the random id the client holds for its session (bans aim at the person by it)."""
        chat = self.edge.chat
        key = self.edge.addresses.of(address)
        self.client_key = self.edge.addresses.client(client_id) if client_id else ""
        refusal = chat.admit(key, self.client_key)
        if refusal is not None:
            chat.count("connections_refused")
            self.ended = True
            self.refused(refusal)
            return False
        self.address_key = key
        return True

    def open(self) -> None:
        """Bring the person in (in a task: the broker is awaited)."""
        self._spawn(self._open())

    def take(self, item: rq.Request | ev.Error | Work) -> None:
        """Queue one decoded request (or the error a bad one gets, or a step of the
        transport's own); `kick` handles them in order."""
        self.inbox.append(item)
        if self.paced and self.eof_by is None and len(self.inbox) >= self.pause_at:
            transport = self.transport
            if transport is not None and transport.is_reading():
                transport.pause_reading()  # the rest waits in the kernel: read later

    @property
    def busy(self) -> bool:
        """Something asked earlier is still being answered (or waits for the outbox)."""
        return bool(self.inbox) or self.task is not None or self.waiting is not None

    def kick(self) -> None:
        """Start handling queued requests, unless that is already under way."""
        if self.task is None and self.link is not None and self.inbox and self.waiting is None:
            self._spawn(self._drain())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self.task = asyncio.get_running_loop().create_task(work)

    async def _open(self) -> None:
        try:
            token = await self.resume_token()
            if not self.ended:
                self.link = await self.edge.chat.open(
                    self, self.address_key, resume=token, client_key=self.client_key
                )
        except BrokerUnavailable:
            self.log.info("could not open uid=%s: broker unavailable", self.uid)
            self._fail("unavailable")
        except Exception:
            self.log.exception("could not open uid=%s", self.uid)
            self._fail("not_opened")
        self.task = None
        if self.ended:
            await self._finish()
        else:
            self.kick()

    async def _drain(self) -> None:
        chat = self.edge.chat
        link = self.link
        assert link is not None
        inbox = self.inbox
        try:
            while inbox and not self.ended and self.waiting is None:
                item = inbox[0]
                if isinstance(item, ev.Error):  # refused while decoding: answered in turn
                    del inbox[0]
                    chat.fail(link, item.code, item.message, item.ref)
                    continue
                if not isinstance(item, rq.Request):  # the transport's own step: free
                    del inbox[0]
                    await item()
                    continue
                if self.paced and (wait := chat.delay(link, item)) > 0:
                    if self._out_of_time(wait):
                        self._refuse_unsent(link)  # half-closed: the rest would come too late
                        continue
                    await asyncio.sleep(wait)  # over budget: read later, as IRC servers do
                    continue
                del inbox[0]
                await chat.handle(link, item)
        except Exception:
            self.log.exception("error while serving uid=%s", self.uid)
            link.resumable = False
            self._fail("internal")
        self.task = None
        if self.ended:
            await self._finish()
        elif self.paced and not self.inbox and self.transport and not self.transport.is_reading():
            self.transport.resume_reading()  # paused by `take`: the backlog is handled

    async def _finish(self) -> None:
        """The connection is over: the person leaves, or stays resumable (`can_resume`)."""
        self.task = None
        if self.link is not None:
            await self.finishing()
            await self.edge.chat.close(self.link, "disconnected")
        elif self.address_key:  # admitted, never opened (a probe, an early close)
            self.edge.chat.release(self.address_key)
            self.address_key = ""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _out_of_time(self, wait: float) -> bool:
        """Half-closed, and the next request fits the budget only after `half_close_seconds`."""
        eof_by = self.eof_by
        return eof_by is not None and asyncio.get_running_loop().time() + wait > eof_by

    def _refuse_unsent(self, link: Link) -> None:
        """Refuse every request still queued, in one error; free steps (replies in turn, and
        `_end_of_input` last) still run."""
        inbox = self.inbox
        unsent = sum(isinstance(item, rq.Request) for item in inbox)
        inbox[:] = [item for item in inbox if not isinstance(item, rq.Request)]
        lines = "1 line" if unsent == 1 else f"{unsent} lines"
        seconds = f"{self.edge.config.half_close_seconds:g}"
        self.edge.chat.fail(
            link,
            "rate_limited",
            f"{lines} not sent: you closed your side of the connection with more queued than "
            f"your message budget lets through in {seconds} s",
        )

    async def _end_of_input(self) -> None:
        """Queued after a half-closed peer's last line: every answer is out; close after them."""
        self.close("end_of_input")

    def _fail(self, why: Failure) -> None:
        self.ended = True
        self.fail(why)

    def _too_slow(self) -> None:
        self.log.warning("slow peer disconnected uid=%s", self.uid)
        self.edge.chat.count("slow_disconnects")
        self.ended = True
        self.too_slow()

    @property
    def uid(self) -> str:
        """Who this is, for logs (never an address)."""
        return self.link.session.uid if self.link else "-"
