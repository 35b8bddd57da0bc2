"""Sending: room messages through the PUBLISH script (id, stream and channel in one step),
room signals and direct events straight onto the channel."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import msgspec

from ...core.events import Deleted, Event, Message
from ...core.ports import BrokerUnavailable
from . import wire
from .connection import (
    COMMAND_TIMEOUT,
    UNREACHABLE,
    Forgotten,
    Link,
    degrades,
    raises_unavailable,
)
from .delivery import Delivery
from .history import SEQ_TTL_FACTOR
from .ordering import Seen
from .presence import Lease

PUBLISH_DEADLINE = 0.8 * COMMAND_TIMEOUT  # a publish later than this is not run at all
MAX_BATCH = 256  # publishes sent in one pipeline at most
LATE_KEPT, LATE_MS = 200, 600_000  # late signals kept for reconnecting nodes: how many, how long


@dataclass(slots=True, frozen=True)
class Outgoing:
    """A publish waiting its turn."""

    keys: list[str]
    args: list[Any]
    future: asyncio.Future[Any]


class Fanout:
    def __init__(
        self,
        link: Link,
        lease: Lease,
        delivery: Delivery,
        seen: Seen,
        retention_seconds: float,
        retention_messages: int,
    ) -> None:
        self.link = link
        self.lease = lease
        self.delivery = delivery
        self.seen = seen
        self.retention_seconds = retention_seconds
        self.retention_messages = retention_messages
        self._outgoing: list[Outgoing] = []  # publishes waiting for the publisher, in order
        self._wake = asyncio.Event()

    @raises_unavailable
    async def publish(self, message: Message, ref: str | None) -> Message:
        room, link = message.room, self.link
        # Past this (Redis time), the sender has been told `unavailable`: too late to publish.
        deadline = self.lease.redis_time() + PUBLISH_DEADLINE
        keys = [link.key("seq", room), link.key("hist", room), link.key("nodes")]
        args = [
            link.channel,
            wire.encode(room),
            wire.encode(message),
            self.retention_messages,
            wire.ms(self.retention_seconds),
            wire.ms(SEQ_TTL_FACTOR * self.retention_seconds),
            wire.encode(ref),
            wire.ms(deadline),
            link.node,
        ]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._outgoing.append(Outgoing(keys, args, future))
        self._wake.set()
        stored = await future
        if not stored:
            raise BrokerUnavailable("redis answered too late")
        id_, ms = int(stored[0]), int(stored[1])
        self.seen.note(room, id_, asyncio.get_running_loop().time())
        return msgspec.structs.replace(message, id=id_, ts=ms / 1000)

    async def run_publisher(self) -> None:
        """Publishes go out in the order this node accepted them, as one pipeline per turn:
        two people on one node get ids in the order they spoke, and a burst costs one
        round trip, not one each."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outgoing:
                batch = self._outgoing[:MAX_BATCH]
                del self._outgoing[:MAX_BATCH]
                await self._send(batch)

    async def _send(self, batch: list[Outgoing]) -> None:
        try:
            with self.link.guard("a publish"):
                results = await self.link.run_each("PUBLISH", [(i.keys, i.args) for i in batch])
        except BrokerUnavailable as error:
            results = [error] * len(batch)
        for item, result in zip(batch, results, strict=True):
            if item.future.done():  # the sender is gone
                continue
            if isinstance(result, Exception):
                item.future.set_exception(BrokerUnavailable(str(result)))
            elif result == b"forgotten":  # reaped while stalled: come back first (resync)
                self.link.lost(Forgotten())
                item.future.set_exception(BrokerUnavailable(UNREACHABLE))
            else:
                item.future.set_result(result)

    def fail_outgoing(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        for item in outgoing:
            if not item.future.done():
                item.future.set_exception(BrokerUnavailable("the server is stopping"))

    def _heard_here(
        self, room: str, event: Event, sender: str | None, *, elsewhere: bool = False
    ) -> bool:
        if not elsewhere:
            self.delivery.on_room(room, event, sender, None)  # at least this node hears it
        return False  # ...and no other does

    @degrades(_heard_here)
    async def signal(
        self, room: str, event: Event, sender: str | None, *, elsewhere: bool = False
    ) -> bool:
        link = self.link
        if not elsewhere:
            await link.redis.publish(link.channel, wire.signal(room, event, sender))
            return True
        # Nodes reconnecting at this moment would miss a publish: they read `P late` when
        # they resynchronise (`Delivery.catch_up_late`).
        data = wire.signal_elsewhere(link.node, room, event, sender)
        late = link.key("late")
        pipe = link.redis.pipeline(transaction=True)
        pipe.rpush(late, data)
        pipe.ltrim(late, -LATE_KEPT, -1)
        pipe.pexpire(late, LATE_MS)
        pipe.publish(link.channel, data)
        await pipe.execute()
        return True

    @raises_unavailable
    async def delete(self, room: str, tombstone: Deleted, sender: str | None) -> bool:
        """The message leaves the room's stream, its tombstone takes its place and the
        `deleted` signal goes out, in one script (DELETE)."""
        link = self.link
        done = await link.run(
            "DELETE",
            [link.key("hist", room), link.key("del", room)],
            [
                tombstone.id,
                self.retention_messages,
                wire.encode(tombstone),
                link.channel,
                wire.signal(room, tombstone, sender),
                wire.ms(self.retention_seconds),
            ],
        )
        return bool(done)

    @raises_unavailable
    async def direct(self, uid: str, event: Event) -> None:
        await self.link.redis.publish(self.link.channel, wire.direct(uid, event))
