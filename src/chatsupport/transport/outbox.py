"""Per-peer bounded outboxes, flushed once per event-loop turn.

Fan-out only appends already-encoded bytes to each recipient's outbox; one callback per
loop turn then writes every dirty outbox with a single `transport.write`, so a burst of
N messages to a peer costs one system call, not N. A peer whose unsent bytes (ours plus
what the kernel would not take) pass `limit` cannot keep up: it is told why and disconnected,
and nobody else waits for it.
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
        "_flusher",
        "_on_overflow",
        "_pending",
        "_runaway",
        "_transport",
        "closed",
        "limit",
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
        self._runaway = 4 * limit
        self.closed = False
        self._deadline: asyncio.TimerHandle | None = None

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

    def overflow(self) -> None:
        """Too slow: drop what is queued; the owner says goodbye and disconnects."""
        if self.closed:
            return
        self._chunks, self._pending = [], 0
        self.closed = True
        self._on_overflow()

    def finish(self, last: bytes = b"") -> None:
        """Write what is queued plus `last`, then close the transport after it."""
        if not self.closed:
            self.flush()
        self.closed = True
        transport = self._transport
        if last and not transport.is_closing():
            transport.write(last)
        if not transport.is_closing():
            transport.close()
        # A peer that never reads would hold its socket open forever: cut it after a while.
        self._deadline = asyncio.get_running_loop().call_later(10.0, transport.abort)

    def lost(self) -> None:
        """The connection is gone: nothing more to write, no deadline to keep."""
        self.closed = True
        self._chunks, self._pending = [], 0
        if self._deadline is not None:
            self._deadline.cancel()
