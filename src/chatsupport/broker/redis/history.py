"""Reading a room's retained messages back from its stream, and its newest id."""

from __future__ import annotations

from ...core.events import Deleted, Message
from . import wire
from .connection import Link, degrades, raises_unavailable
from .ordering import Seen

SEQ_TTL_FACTOR = 2  # a room's counter outlives its last message by 2 retention windows


def whole(after: int, last: int, kept: set[int]) -> bool:
    """Whether every id after `after` up to `last` is still kept (a deleted message's place
    counts as kept): what a trim dropped is older than what it kept, so walk down from the
    newest until an id is missing."""
    at = last
    while at > after and at in kept:
        at -= 1
    return at <= after


class History:
    def __init__(
        self, link: Link, retention_seconds: float, retention_messages: int, seen: Seen
    ) -> None:
        self.link = link
        self.retention_seconds = retention_seconds
        self.retention_messages = retention_messages
        self.seen = seen

    @raises_unavailable
    async def history(self, room: str, after: int) -> tuple[list[Message], bool]:
        return await self.read(room, after)

    async def read(self, room: str, after: int) -> tuple[list[Message], bool]:
        """`history` whatever our state (a gap fill or a catch-up notices failures itself)."""
        link = self.link
        last_raw, entries, deleted = await link.run(
            "HISTORY",
            [link.key("seq", room), link.key("hist", room), link.key("del", room)],
            [after, self.retention_messages, wire.ms(self.retention_seconds)],
        )
        missed = []
        for _, fields in reversed(entries):  # the script reads newest first
            item = wire.stream_entry(room, fields)
            if item.id > after:
                missed.append(item.message())
        kept = {m.id for m in missed} | {int(i) for i in deleted}
        return missed, whole(after, int(last_raw), kept)

    @raises_unavailable
    async def deletions(self, room: str, after: int) -> list[Deleted]:
        found = await self.link.redis.hvals(self.link.key("del", room))
        tombstones = sorted(map(wire.tombstone, found), key=lambda t: t.id)
        return [t for t in tombstones if t.id > after]

    def _seen_here(self, room: str) -> int:
        return self.seen.last(room) or 0

    @degrades(_seen_here)
    async def last_id(self, room: str) -> int:
        return await self.newest(room)

    async def newest(self, room: str) -> int:
        value = await self.link.redis.get(self.link.key("seq", room))
        return int(value or 0)

    async def seed(self, seq_ttl_ms: int) -> None:
        """A Redis that lost its data must still never hand out an id already used: each
        room's counter is raised to the highest id this node has seen."""
        seen = self.seen.rooms()
        if not seen:
            return
        link = self.link
        pipe = link.redis.pipeline(transaction=False)
        for room, last in seen:
            await link.scripts["SEED"](
                keys=[link.key("seq", room)], args=[last, seq_ttl_ms], client=pipe
            )
        await pipe.execute()
