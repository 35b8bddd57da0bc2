"""The two edges the core talks through: a Sink per connection, and the Broker.

A Sink is one connected peer as the core sees it: `send` only queues (it never blocks or
awaits), `close` ends the connection after what is queued. The Broker owns everything
shared between nodes (ids and order, history, names, membership, what resume needs, and
small shared state for features) and delivers published events back to every node, this
one included, through the callbacks given to `start`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from .events import Event, Member, Message, RoomInfo

RoomHandler = Callable[[str, Event, str | None, str | None], None]  # room, event, sender uid, ref
# uid, event; what it returns (if anything) is awaited before the next delivery
DirectHandler = Callable[[str, Event], Awaitable[None] | None]
ReleaseHandler = Callable[[str], Awaitable[None]]  # uid: another node adopted this person


class SessionRecord(msgspec.Struct, frozen=True):
    """What another node needs to adopt a person on resume (never the token, only its hash)."""

    token_hash: str
    uid: str
    name: str
    role: str | None = None
    rooms: tuple[str, ...] = ()
    current: str | None = None
    ignored: tuple[str, ...] = ()
    crisis: bool = False
    since: dict[str, int] = msgspec.field(default_factory=dict)  # room -> id when they came in
    # private rooms ended while they were away -> (first, last) id to replay
    departed: dict[str, tuple[int, int]] = msgspec.field(default_factory=dict)


class Sink(Protocol):
    """What the core asks of a peer is what it can do (the capabilities below), never which
    interface it is: a new transport declares them and the core needs no change."""

    @property
    def interface(self) -> str:
        """A name for this kind of peer (`text`, `json`) for metrics; nothing depends on it."""
        ...

    @property
    def echoes_own(self) -> bool:
        """Gets its own room messages back, with their `ref` (so every client sees one order)."""
        ...

    @property
    def can_resume(self) -> bool:
        """Its session outlives the connection: kept for a `resume` within the grace period."""
        ...

    def send(self, event: Event) -> None: ...

    def close(self, reason: str) -> None: ...


class BrokerUnavailable(Exception):
    """The broker cannot take this now (e.g. Redis is down); the request gets `unavailable`."""


class Broker(Protocol):
    healthy: bool  # false while shared state cannot be reached (/healthz says "degraded")

    async def start(
        self,
        on_room: RoomHandler,
        on_direct: DirectHandler,
        on_release: ReleaseHandler | None = None,
    ) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, message: Message, ref: str | None) -> Message:
        """Give `message` the room's next id, keep it in history and deliver it everywhere."""
        ...

    async def signal(self, room: str, event: Event, sender: str | None) -> None:
        """Deliver a transient room event (presence, …) everywhere, without an id."""
        ...

    async def direct(self, uid: str, event: Event) -> None:
        """Deliver `event` to the person `uid` on whichever node holds them."""
        ...

    async def history(self, room: str, after: int) -> tuple[list[Message], bool]:
        """Messages with id > `after` still retained, and whether nothing in between is gone."""
        ...

    async def last_id(self, room: str) -> int: ...

    async def join_room(self, room: str, member: Member) -> int: ...

    async def leave_room(self, room: str, uid: str) -> int: ...

    async def members(self, room: str) -> list[Member]: ...

    async def room_counts(self) -> list[RoomInfo]: ...

    async def claim_name(self, key: str, uid: str) -> bool: ...

    async def release_name(self, key: str, uid: str) -> None: ...

    # ---- resume on any node ----------------------------------------------------------------
    async def save_session(self, record: SessionRecord) -> None:
        """Keep `record` for the retention window (cheap when it has not changed)."""
        ...

    async def take_session(self, token_hash: str) -> tuple[SessionRecord, list[str]] | None:
        """Adopt a person kept by any node: their record, and the rooms they are still shown
        in. The node that held them is told (`on_release`) and lets go without a word."""
        ...

    async def drop_session(self, token_hash: str) -> None: ...

    async def shared_secret(self, name: str) -> bytes:
        """A random 32-byte secret that every node sharing this broker gets the same of."""
        ...

    # ---- small shared state for features (moderation, matching) ---------------------------
    # Flags: `kind` is a namespace ("ban", "mute", ...), `key` an id in it; each expires.
    async def set_flag(self, kind: str, key: str, ttl: float, value: str = "1") -> None: ...

    async def get_flag(self, kind: str, key: str) -> str | None: ...

    async def clear_flag(self, kind: str, key: str) -> bool: ...

    async def flags(self, kind: str) -> dict[str, str]:
        """Every live flag of `kind`, key -> value."""
        ...

    # Queues: ordered by priority (lower first), then by arrival; each item at most once.
    async def enqueue(self, queue: str, item: str, ttl: float, priority: int = 1) -> int:
        """Add `item` (a no-op if queued); its position, from 1. The queue expires `ttl`
        seconds after it last changed."""
        ...

    async def reprioritise(self, queue: str, item: str, priority: int) -> bool:
        """Move a queued item to `priority`, behind the items already there."""
        ...

    async def dequeue(self, queue: str, item: str | None = None) -> str | None:
        """Take `item` (or the first) out; what was taken, None if it was not there. Only
        one node ever takes a given item."""
        ...

    async def queued(self, queue: str) -> list[str]: ...
