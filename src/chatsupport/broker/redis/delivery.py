"""What arrives on the channel, handed to the core in order: room messages through each
room's `Feed` (ordering.py decides, this module reads the gaps from the stream), room
signals and direct events as they come, and `R` (another node adopted someone)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ...core.events import Message
from ...core.ports import (
    BrokerUnavailable,
    DirectHandler,
    RoomHandler,
    ignore_direct,
    ignore_room,
)
from . import wire
from .connection import Link
from .history import History
from .ordering import Feed, Seen, Step

log = logging.getLogger("chatsupport.broker.redis")

LATE_SEEN = 400  # late signals remembered, so none is delivered twice (more than P late keeps)


class Delivery:
    def __init__(
        self,
        link: Link,
        history: History,
        seen: Seen,
        release: Callable[[str], Awaitable[None]],
    ) -> None:
        self.link = link
        self.history = history
        self.seen = seen
        self.release = release  # uid: another node adopted them
        self.on_room: RoomHandler = ignore_room
        self.on_direct: DirectHandler = ignore_direct
        self.feeds: dict[str, Feed] = {}  # rooms with people on this node
        self.late_seen: dict[str, None] = {}  # ids of late signals delivered (insertion order)
        self._lock = asyncio.Lock()  # one delivery path at a time: order is kept

    # ---- rooms with people here ------------------------------------------------------------
    def open(self, room: str) -> Feed:
        """The room's feed, made (before its first member's JOIN runs) if new: what arrives
        meanwhile waits in it."""
        feed = self.feeds.get(room)
        if feed is None:
            feed = self.feeds[room] = Feed()
        return feed

    def close(self, room: str) -> None:
        self.feeds.pop(room, None)

    async def start(self, room: str, feed: Feed, last: int) -> None:
        """The first local member joined after id `last`: deliver what came since, in order."""
        async with self._lock:
            if self.feeds.get(room) is not feed:
                return
            with contextlib.suppress(BrokerUnavailable), self.link.guard("catching up"):
                for item in feed.start(last):
                    await self._advance(feed, item)

    async def catch_up_all(self) -> None:
        """After an outage: every room here reads what it missed from its stream."""
        async with self._lock:
            for room, feed in list(self.feeds.items()):
                if feed.last is None:  # what it held is in the stream too
                    feed.start(self.seen.last(room) or await self.history.newest(room))
                await self._catch_up(room, feed)

    # ---- from the channel ------------------------------------------------------------------
    async def dispatch(self, data: bytes) -> None:
        try:
            item = wire.delivery(data)
            if isinstance(item, wire.Published):
                await self._published(item)
            elif isinstance(item, wire.Signal):
                # Not filtered by our members: the core has channels of its own (staff
                # channels) that the broker is never told about.
                self.on_room(item.room, item.event, item.sender, None)
            elif isinstance(item, wire.SignalElsewhere):
                self._late(item)
            elif isinstance(item, wire.Direct):
                pending = self.on_direct(item.uid, item.event)
                if pending is not None:
                    await self._settle(pending)
            elif item.node != self.link.node:
                await self.release(item.uid)
        except ValueError:  # a malformed delivery, or a malformed message in one
            log.warning("ignored a malformed delivery on %s", self.link.channel)

    def _late(self, item: wire.SignalElsewhere) -> None:
        """A signal sent after an outage, live or read back from `P late`: once per node."""
        if item.skip == self.link.node or item.id in self.late_seen:
            return
        self.late_seen[item.id] = None
        if len(self.late_seen) > LATE_SEEN:
            del self.late_seen[next(iter(self.late_seen))]  # the oldest
        self.on_room(item.room, item.event, item.sender, None)

    async def catch_up_late(self) -> None:
        """After an outage: the late signals sent while this node was reconnecting."""
        for data in await self.link.redis.lrange(self.link.key("late"), 0, -1):
            try:
                item = wire.delivery(data)
            except ValueError:
                continue
            if isinstance(item, wire.SignalElsewhere):
                self._late(item)

    async def _settle(self, pending: Awaitable[None]) -> None:
        """Await what the core does for a direct event (in delivery order); its failure is
        logged and never stops this node's deliveries."""
        try:
            await pending
        except Exception:
            log.exception("acting on a direct event failed")

    async def _published(self, item: wire.Published) -> None:
        self.seen.note(item.room, item.id, asyncio.get_running_loop().time())
        if item.room not in self.feeds:
            return  # nobody here is in that room
        async with self._lock:
            feed = self.feeds.get(item.room)
            if feed is not None:
                await self._advance(feed, item)

    async def _advance(self, feed: Feed, item: wire.Published) -> None:
        step = feed.arrive(item)
        if step is Step.FILL:
            await self._catch_up(item.room, feed)
            if self.feeds.get(item.room) is not feed or not feed.after_fill(item):
                return
        elif step is not Step.DELIVER:
            return
        self._deliver(item.room, item.message(), item.ref)

    async def _catch_up(self, room: str, feed: Feed) -> None:
        assert feed.last is not None
        messages, _ = await self.history.read(room, feed.last)
        for message in feed.fill(messages):
            if self.feeds.get(room) is feed:
                self._deliver(room, message, None)

    def _deliver(self, room: str, message: Message, ref: str | None) -> None:
        try:
            self.on_room(room, message, message.uid, ref)
        except Exception:  # a fault in fan-out must not stop delivery to everyone else
            log.exception("delivery failed in room %s", room)
