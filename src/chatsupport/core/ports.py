"""The two edges the core talks through: a Sink per connection, and the Broker.

A Sink is one connected peer as the core sees it: `send` only queues (it never blocks or
awaits), `close` ends the connection after what is queued. The Broker owns everything
shared between nodes (ids and order, history, names, membership) and delivers published
events back to every node, this one included, through the callbacks given to `start`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .events import Event, Member, Message, RoomInfo

RoomHandler = Callable[[str, Event, str | None, str | None], None]  # room, event, sender uid, ref
DirectHandler = Callable[[str, Event], None]  # uid, event


class Sink(Protocol):
    @property
    def interface(self) -> str:
        """`text` or `json`: which rendering this peer gets."""
        ...

    def send(self, event: Event) -> None: ...

    def close(self, reason: str) -> None: ...


class BrokerUnavailable(Exception):
    """The broker cannot take this now (e.g. Redis is down); the request gets `unavailable`."""


class Broker(Protocol):
    async def start(self, on_room: RoomHandler, on_direct: DirectHandler) -> None: ...

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
