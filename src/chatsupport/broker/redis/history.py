"""Reading a room's retained messages back from its stream, and its newest id."""

from __future__ import annotations

from ...core.events import Message
from . import wire
from .connection import Link, degrades, raises_unavailable
from .ordering import Seen

SEQ_TTL_FACTOR = 2  # a room's counter outlives its last message by 2 retention windows


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
        last_raw, entries = await link.run(
            "HISTORY",
            [link.key("seq", room), link.key("hist", room)],
            [after, self.retention_messages, wire.ms(self.retention_seconds)],
        )
        last = int(last_raw)
        missed = []
        for _, fields in reversed(entries):  # the script reads newest first
            item = wire.stream_entry(room, fields)
            if item.id > after:
                missed.append(item.message())
        first_kept = missed[0].id if missed else last + 1
        return missed, first_kept <= after + 1 or after >= last

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
