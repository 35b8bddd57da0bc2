"""Per-peer bounded outboxes, flushed once per event-loop turn.

Fan-out only appends already-encoded bytes to each recipient's outbox; one callback per
loop turn then writes every dirty outbox with a single `transport.write`, so a burst of
N messages to a peer costs one system call, not N. A peer whose unsent bytes (ours plus
what the kernel would not take) pass `limit` cannot keep up: it is told why and disconnected,
and nobody else waits for it.

What the server chooses to send in bulk (a resume's replay) is paced instead: it is written
while the unsent bytes stay under the low-water mark (`low`, a quarter of the limit), and
`when_drained` says when the peer has read enough for more. So the limit bounds what is
queued, never what a peer is owed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Flusher:
    """Writes every outbox that received data during this loop turn, once."""

    __slots__ = ("_dirty", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[Outbox] = []
        self._scheduled = False

    def mark(self, outbox: Outbox) -> None:
        self._dirty.append(outbox)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        self._scheduled = False
        for outbox in dirty:
            outbox.flush()


class Outbox:
    __slots__ = (
        "_chunks",
        "_deadline",
        "_drained",
        "_flusher",
        "_on_overflow",
        "_pending",
        "_runaway",
        "_transport",
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

    def writable(self) -> None:
        """The transport's buffer has drained (its protocol's `resume_writing`)."""
        if self._drained is not None and not self.backlogged:
            self._drain_done()

    def _drain_done(self) -> None:
        callback, self._drained = self._drained, None
        if callback is not None:
            callback()

    def push(self, data: bytes) -> None:
        if self.closed:
            return
        chunks = self._chunks
        if not chunks:
            self._flusher.mark(self)
        chunks.append(data)
        self._pending += len(data)
        if self._pending > self._runaway:  # a runaway turn; the real test is after writing
            self.overflow()

    def flush(self) -> None:
        if not self._chunks or self.closed:
            return
        chunks, self._chunks, self._pending = self._chunks, [], 0
        self._transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if self._transport.get_write_buffer_size() > self.limit:
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
        if not self.closed:
            self.flush()
        self.closed, self._drained = True, None
        transport = self._transport
        if last and not transport.is_closing():
            transport.write(last)
        if not transport.is_closing():
            transport.close()
        # A peer that never reads would hold its socket open forever: cut it after a while.
        self._deadline = asyncio.get_running_loop().call_later(10.0, transport.abort)

    def lost(self) -> None:
        """The connection is gone: nothing more to write, no deadline to keep."""
        self.closed, self._drained = True, None
        self._chunks, self._pending = [], 0
        if self._deadline is not None:
            self._deadline.cancel()
