"""Per-peer bounded outboxes, flushed once per event-loop turn, or written at once when quiet.

Under load, fan-out only appends already-encoded bytes to each recipient's outbox; one
callback per loop turn then writes every dirty outbox with a single `transport.write`, so a
burst of N messages to a peer costs one system call, not N. When the server is quiet (one
message at a time: no outbox has received two in one turn lately) that hop buys nothing, and
a peer's first bytes of a turn are written straight away (`Flusher.direct`); a second one in
the same turn goes to the outbox as before and turns the hop back on until turns are quiet
again. Either way what is sent keeps its order: bytes are written only when the outbox is
empty, and the transport appends to whatever it still holds. A peer whose unsent bytes (ours
plus what the kernel would not take) pass `limit` cannot keep up: it is told why and
disconnected, and nobody else waits for it.

What the server chooses to send in bulk (a resume's replay) is paced instead: it is written
while the unsent bytes stay under the low-water mark (`low`, a quarter of the limit), and
`when_drained` says when the peer has read enough for more. So the limit bounds what is
queued, never what a peer is owed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

QUIET_TURNS = 2  # turns in a row without two messages to one peer before writing at once


class Flusher:
    """Writes every outbox that received data during this loop turn, once; and says whether
    outboxes may write at once instead (`direct`: nothing was coalesced lately).

    It also ends the core's room batches (`sealer`, `Chat.seal`): at once while `direct`, else
    at the end of the turn, before the outboxes are written, or as soon as anything else is
    pushed to any outbox (`open`), so that nothing overtakes what the batch holds."""

    __slots__ = (
        "_dirty",
        "_loop",
        "_scheduled",
        "direct",
        "open",
        "quiet",
        "sealer",
        "sealing",
        "turn",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Outbox] = []
        self._scheduled = False
        self.turn = 0  # counts loop turns that wrote anything (a direct write is "this turn's")
        self.direct = True
        self.quiet = 0  # turns in a row in which no outbox had two messages
        self.sealer: Callable[[], bool] | None = None  # ends a batch: whether it held several
        self.open = False  # a batch waits to be sealed
        self.sealing = False  # sealing at the end of the turn: outboxes may write at once

    def mark(self, outbox: Outbox) -> None:
        self._dirty.append(outbox)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def wrote(self) -> None:
        """An outbox wrote at once: end this turn after the others' (a later write in it
        to the same peer is then queued)."""
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def busy(self) -> None:
        """Two messages to one peer in one turn: coalesce again, until turns are quiet."""
        self.direct = False
        self.quiet = -1  # the flush that ends this turn counts it as none

    def batched(self) -> None:
        """The core added an event to a room batch: seal it now when quiet, else later."""
        if self.direct:
            self.seal()
        elif not self.open:
            self.open = True
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self.flush)

    def seal(self) -> None:
        self.open = False
        if self.sealer is not None and self.sealer():
            self.busy()  # several messages went out together

    def flush(self) -> None:
        self.turn += 1
        coalesced = False
        if self.open:  # the turn's batch first: written now unless queued behind other bytes
            self.open = False
            self.sealing = True
            try:
                coalesced = self.sealer is not None and self.sealer()
            finally:
                self.sealing = False
        dirty, self._dirty = self._dirty, []  # with what the batch queued (none scheduled)
        self._scheduled = False
        for outbox in dirty:
            coalesced = outbox.flush() or coalesced
        if coalesced:
            self.busy()
        if not self.direct:
            self.quiet += 1  # 0 after a busy turn
            self.direct = self.quiet >= QUIET_TURNS


class Outbox:
    __slots__ = (
        "_chunks",
        "_deadline",
        "_drained",
        "_flusher",
        "_full",
        "_gone",
        "_on_overflow",
        "_pending",
        "_runaway",
        "_transport",
        "_turn",
        "closed",
        "limit",
        "low",
    )

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        flusher: Flusher,
        limit: int,
        on_overflow: Callable[[], None],
    ) -> None:
        self._transport = transport
        self._flusher = flusher
        self._chunks: list[bytes] = []
        self._pending = 0
        self._on_overflow = on_overflow
        self.limit = limit
        self.low = limit // 4
        self._runaway = 4 * limit
        self.closed = False
        self._deadline: asyncio.TimerHandle | None = None
        self._drained: Callable[[], None] | None = None
        self._turn = -1  # the flusher's turn in which this outbox last wrote at once
        self._full = False  # the transport holds more than the low-water mark (`pause_writing`)
        self._gone = False  # the connection is lost (`lost`): nothing left to cut
        # The transport tells its protocol (`resume_writing`, which calls `writable`) when
        # its buffer falls to half the low-water mark, after passing the mark.
        transport.set_write_buffer_limits(high=self.low, low=self.low // 2)

    @property
    def backlogged(self) -> bool:
        """More than the low-water mark waits to be written (or nothing ever will be)."""
        return self.closed or self._pending + self._transport.get_write_buffer_size() > self.low

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when what waits has fallen to the low-water mark (at once
        if it has); never if the connection ends first."""
        self._drained = callback
        if not self.backlogged:
            self._drain_done()

    def full(self) -> None:
        """The transport's buffer passed the low-water mark (its protocol's `pause_writing`):
        from here until `writable`, each write checks it against the limit."""
        self._full = True

    def resumed(self) -> None:
        """The transport's buffer has drained (its protocol's `resume_writing`)."""
        self._full = False
        self.writable()

    def writable(self) -> None:
        """What waits may have fallen to the low-water mark: a `when_drained` may go on."""
        if self._drained is not None and not self.backlogged:
            self._drain_done()

    def _drain_done(self) -> None:
        callback, self._drained = self._drained, None
        if callback is not None:
            callback()

    def put(self, data: bytes) -> None:
        """A room batch's bytes (`Chat.seal`): at the end of a turn, with nothing queued ahead
        of them, written at once; else as `push`."""
        if self._flusher.sealing and not self._chunks and not self.closed:
            self._write(data)
        else:
            self.push(data)

    def push(self, data: bytes) -> None:
        flusher = self._flusher
        if flusher.open:  # a room batch is not sealed yet: it goes first
            flusher.seal()
        if self.closed:
            return
        chunks = self._chunks
        if not chunks:
            if flusher.direct:
                if self._turn != flusher.turn:  # the peer's first bytes this turn: write now
                    self._turn = flusher.turn
                    flusher.wrote()
                    self._write(data)
                    return
                flusher.busy()  # a second message this turn: queue it, and coalesce again
            flusher.mark(self)
        chunks.append(data)
        self._pending += len(data)
        if self._pending > self._runaway:  # a runaway turn; the real test is after writing
            self.overflow()

    def flush(self) -> bool:
        """Write what is queued, in one call; whether that was more than one message."""
        chunks = self._chunks
        if not chunks or self.closed:
            return False
        self._chunks, self._pending = [], 0
        if len(chunks) == 1:
            self._write(chunks[0])
            return False
        self._write(b"".join(chunks))
        return True

    def _write(self, data: bytes) -> None:
        transport = self._transport
        transport.write(data)  # after what the transport still holds, if anything: in order
        # Under the low-water mark (the transport has not said otherwise) it is under the limit.
        if self._full and transport.get_write_buffer_size() > self.limit:
            self.overflow()
        elif self._drained is not None:
            self.writable()  # written at once, or soon: past the mark, `resume_writing` says

    def overflow(self) -> None:
        """Too slow: drop what is queued; the owner says goodbye and disconnects."""
        if self.closed:
            return
        self._chunks, self._pending = [], 0
        self.closed = True
        self._drained = None
        self._on_overflow()

    def finish(self, last: bytes = b"") -> None:
        """Write what is queued plus `last`, then close the transport after it."""
        if self._flusher.open:  # a room batch is not sealed yet: it goes first
            self._flusher.seal()
        if not self.closed:
            self.flush()
        self.closed, self._drained = True, None
        transport = self._transport
        if last and not transport.is_closing():
            transport.write(last)
        if not transport.is_closing():
            transport.close()
        # A peer that never reads would hold its socket open forever: cut it after a while
        # (unless it is gone already: `lost` came first, and would not cancel this one).
        if not self._gone and self._deadline is None:
            self._deadline = asyncio.get_running_loop().call_later(10.0, transport.abort)

    def lost(self) -> None:
        """The connection is gone: nothing more to write, no deadline to keep."""
        self.closed, self._drained, self._gone = True, None, True
        self._chunks, self._pending = [], 0
        if self._deadline is not None:
            self._deadline.cancel()
