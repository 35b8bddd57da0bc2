"""Delivery order per room on this node, as rules without I/O (delivery.py does the reads).

Pub/sub is at-most-once, and a room's first person on this node joins while messages are
in flight. So each room with people here keeps the highest id delivered (`Feed.last`):
a message at or below it is a duplicate and dropped; one that skips ahead waits until
the gap is read from the room's stream; whatever arrives before the node knows where the
room starts is held, then offered again in order.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from ...core.events import Message
from .wire import Published


class Step(enum.Enum):
    HOLD = "hold"  # where the room starts is not known yet: held until `start`
    DROP = "drop"  # delivered already (a duplicate, or read from the stream meanwhile)
    DELIVER = "deliver"  # the next one: deliver it now
    FILL = "fill"  # ids are missing before it: read them from the stream, then `after_fill`


@dataclass(slots=True)
class Feed:
    """Delivery state of one room that has people on this node."""

    last: int | None = None  # highest id delivered here; None until we know where to start
    pending: list[Published] = field(default_factory=list)  # arrived before that

    def arrive(self, item: Published) -> Step:
        if self.last is None:
            self.pending.append(item)
            return Step.HOLD
        if item.id <= self.last:
            return Step.DROP
        if item.id > self.last + 1:
            return Step.FILL
        self.last = item.id
        return Step.DELIVER

    def start(self, last: int) -> list[Published]:
        """The room starts after id `last` here: what arrived meanwhile, to `arrive` again
        in order (nothing if it had started already)."""
        if self.last is not None:
            return []
        self.last = last
        pending, self.pending = self.pending, []
        return pending

    def fill(self, messages: Iterable[Message]) -> list[Message]:
        """Of messages read from the stream (in id order), those not delivered yet, in
        order; the feed moves past them."""
        assert self.last is not None
        fresh = []
        for message in messages:
            if message.id > self.last:
                self.last = message.id
                fresh.append(message)
        return fresh

    def after_fill(self, item: Published) -> bool:
        """Once the gap before `item` was filled: whether to deliver it now. Not if the fill
        delivered it already; yes if the stream no longer had the gap (what is gone is gone)."""
        assert self.last is not None
        if item.id <= self.last:
            return False
        self.last = item.id
        return True


class Seen:
    """The highest id this node has seen per room, and when. It answers `last_id` while
    Redis is away, and raises the counters of a Redis that lost them (ids only grow)."""

    def __init__(self) -> None:
        self._rooms: dict[str, tuple[int, float]] = {}  # room -> (highest id, when seen)

    def note(self, room: str, id_: int, now: float) -> None:
        seen = self._rooms.get(room)
        self._rooms[room] = (max(id_, seen[0] if seen else 0), now)

    def last(self, room: str) -> int | None:
        seen = self._rooms.get(room)
        return seen[0] if seen else None

    def rooms(self) -> list[tuple[str, int]]:
        return [(room, last) for room, (last, _) in self._rooms.items()]

    def forget_quiet(self, before: float, keep: Collection[str]) -> None:
        """Forget rooms not seen since `before`, unless they are in `keep`."""
        for room in [r for r, (_, seen) in self._rooms.items() if seen < before]:
            if room not in keep:
                del self._rooms[room]
