"""The Redis broker: any number of `chatsupport serve` processes behave as one server.

Why these structures (docs/architecture.md, "Redis broker", says it at length):
- One Lua script per message takes the room's next id (INCR), keeps the message in the
  room's stream (bounded by MAXLEN and by age with MINID) and PUBLISHes it: Redis runs
  scripts one at a time, so pub/sub order is id order on every node, and the stream is the
  resume point for any node.
- One channel for the whole cluster. Every node sees every delivery and keeps the ones for
  rooms it has people in; there is no subscribe/unsubscribe race when someone joins.
- Pub/sub is at-most-once, so each node remembers the last id it delivered per room: a
  duplicate is dropped, a gap is filled from the stream before the next message, and after
  an outage every room catches up from the stream. Nothing accepted is lost or doubled.
- Membership lives in per-node hashes under a per-node lease; a node that dies stops being
  counted when its lease ends, and a live node announces its people as gone.
- Everything this node put in Redis is also held here, so after an outage (even a Redis
  that restarted empty) the node writes it back: its people's memberships, names and
  resume records, the key check, and room counters at least as high as any id seen.
- No secret is stored: shared secrets are derived from the operator's (keys.py).

The parts, one job each:
    connection.py  the client, scripts, subscription, reconnecting, health, the outage guard
    wire.py        what is stored and published, as typed records
    ordering.py    per-room delivery order and gap detection, without I/O
    delivery.py    what arrives on the channel, handed to the core in order
    publish.py     room messages, signals and direct events going out
    history.py     a room's stream read back, its newest id, counters after data loss
    presence.py    the node's lease, its people's memberships, counts over live nodes
    state.py       names, resume records, the key check, flags and queues
    reports.py     reports: expiring hashes, paged indexes, per-reporter caps (own scripts)
    scripts.py     the Lua scripts and the list of keys
This module composes them into the `Broker` port and runs the node's background work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable

from redis.exceptions import RedisError

from ...core import events as ev
from ...core.events import Event, Member, Message, RoomInfo
from ...core.ports import (
    BrokerUnavailable,
    DirectHandler,
    FiledReport,
    Filing,
    HealthHandler,
    KeptReport,
    ReleaseHandler,
    RoomHandler,
    SessionRecord,
    ignore_direct,
    ignore_room,
)
from . import wire
from .connection import DOWN, Forgotten, Link, parse_url
from .delivery import Delivery
from .history import SEQ_TTL_FACTOR, History
from .ordering import Seen
from .presence import Lease, Presence
from .publish import Fanout
from .reports import Reports
from .state import Names, Sessions, SharedState

__all__ = ["RedisBroker", "parse_url"]

log = logging.getLogger("chatsupport.broker.redis")


class RedisBroker:
    def __init__(
        self,
        url: str,
        retention_seconds: float,
        retention_messages: int,
        wallclock: Callable[[], float],
        secret: bytes | None = None,
    ) -> None:
        """`secret` is the operator's (keys.py); random when not given (tests)."""
        self.retention_seconds = retention_seconds
        self.node = secrets.token_hex(6)
        self.link = link = Link(parse_url(url), self.node)
        # Message times come from Redis' clock (one for all nodes); ours only serves to
        # tell Redis, in its time, until when a publish may still run (see PUBLISH).
        self.lease = Lease(link, wallclock)
        seen = Seen()
        self.room_log = History(link, retention_seconds, retention_messages, seen)
        self.delivery = Delivery(link, self.room_log, seen, self._release)
        self.presence = Presence(link, self.delivery)
        self.fanout = Fanout(
            link, self.lease, self.delivery, seen, retention_seconds, retention_messages
        )
        self.names = Names(link, retention_seconds)
        self.sessions = Sessions(link, retention_seconds, self._release)
        self.shared = SharedState(link, secret or secrets.token_bytes(32))
        self.reports = Reports(link)
        self._seen = seen
        self._on_release: ReleaseHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def healthy(self) -> bool:
        return self.link.up

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(
        self,
        on_room: RoomHandler,
        on_direct: DirectHandler,
        on_release: ReleaseHandler | None = None,
        on_health: HealthHandler | None = None,
    ) -> None:
        self.delivery.on_room, self.delivery.on_direct = on_room, on_direct
        self._on_release, self.link.on_health = on_release, on_health
        try:
            await self.link.connect(self._resync)
        except (*DOWN, RedisError) as error:
            await self.link.close()
            raise BrokerUnavailable(f"cannot reach Redis at {self.link.where()}: {error}") from None
        if self.shared.mismatch:  # bans by address would not hold across nodes: refuse
            with contextlib.suppress(*DOWN, RedisError):
                await self.lease.end()
            await self.link.close()
            raise ValueError(
                "this node's address key differs from the one the nodes already running on "
                f"{self.link.where()} use: give every node the same key (docs/privacy.md)"
            )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.link.stay_connected(self._resync, self.delivery.dispatch)),
            loop.create_task(self._heartbeat()),
            loop.create_task(self.fanout.run_publisher()),
        ]
        log.info("redis broker started node=%s", self.node)

    async def stop(self) -> None:
        self.link.stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.fanout.fail_outgoing()
        if self.link.up:
            # Go as a dead node goes, but at once: the others see our people leave (they
            # may resume on another node).
            with contextlib.suppress(*DOWN, RedisError):
                await self._announce_gone(await self.lease.end())
        await self.link.close()
        self.delivery.on_room, self.delivery.on_direct = ignore_room, ignore_direct
        self._on_release, self.link.on_health = None, None

    async def forget_node(self, node: str) -> None:
        """`node` is dead for certain (a worker its parent saw die, `--workers`): end its
        lease now, as its own stop would have, and announce its people as gone. Unlike a
        node that was only stalled, it never comes back under that id."""
        if node == self.node:
            return
        with contextlib.suppress(*DOWN, RedisError, BrokerUnavailable):  # its lease runs out
            await self.link.redis.zadd(self.link.key("nodes"), {node: 0}, xx=True)
            await self._announce_gone(await self.lease.reap())

    async def _resync(self) -> None:
        """Write back what this node holds, then catch every room up from its stream; if
        our people were announced as gone meanwhile, announce them as back."""
        await self.lease.renew(rejoin=True)
        reaped = await self.lease.was_reaped()
        await self.shared.restore()
        await self.room_log.seed(self._seq_ttl())
        await self.presence.rewrite()
        await self.names.reclaim()
        await self.sessions.rewrite()
        await self.delivery.catch_up_all()
        await self.delivery.catch_up_late()
        if reaped:
            await self._announce_back()
            await self.lease.reaped_done()

    async def _announce_back(self) -> None:
        """`join` for each of our people in each room, with the count now: every node
        (this one too) shows them as present again, as `who` does. Sent before the node
        is up again, so before any of them can speak."""
        counts = {info.name: info.count for info in await self.presence.room_counts_now()}
        for room, members in list(self.presence.local.items()):
            for member in list(members.values()):
                back = ev.Presence(
                    room=room,
                    event="join",
                    uid=member.uid,
                    name=member.name,
                    count=counts.get(room, len(members)),
                )
                signal = wire.signal(room, back, member.uid)
                await self.link.redis.publish(self.link.channel, signal)
        log.info("back after a stall: %d people announced as present again", self._people())

    def _people(self) -> int:
        return len({uid for members in self.presence.local.values() for uid in members})

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        refresh_at = loop.time() + self.retention_seconds / 4
        while True:
            await asyncio.sleep(self.link.lease / 4)
            with contextlib.suppress(BrokerUnavailable), self.link.guard("the heartbeat"):
                await self._beat()
                if loop.time() >= refresh_at:
                    await self._refresh()
                    refresh_at = loop.time() + self.retention_seconds / 4

    async def _beat(self) -> None:
        """Renew this node's lease and its keys; announce the people of dead nodes as gone."""
        if not await self.lease.renew():
            raise Forgotten
        pipe = self.link.redis.pipeline(transaction=False)
        self.presence.renew(pipe, self._seq_ttl())
        await pipe.execute()
        await self._announce_gone(await self.lease.reap())
        now = asyncio.get_running_loop().time()
        self._seen.forget_quiet(now - 2 * self.retention_seconds, keep=self.presence.local)

    async def _refresh(self) -> None:
        """Keep names, resume records and the key check alive while this node runs."""
        pipe = self.link.redis.pipeline(transaction=False)
        self.names.renew(pipe)
        self.sessions.renew(pipe)
        self.shared.renew(pipe)
        await pipe.execute()

    def _seq_ttl(self) -> int:
        return wire.ms(SEQ_TTL_FACTOR * self.retention_seconds)

    async def _announce_gone(self, gone: list[wire.Gone]) -> None:
        """`leave` for the people of a node that died."""
        for person in gone:
            member = person.member
            presence = ev.Presence(
                room=person.room,
                event="leave",
                uid=member.uid,
                name=member.name,
                count=person.count,
            )
            await self.fanout.signal(person.room, presence, member.uid)

    async def _release(self, uid: str) -> None:
        """Another node adopted `uid` (resume there): let go here without a word."""
        self.sessions.forget_owner(uid)
        self.presence.forget_everywhere(uid)
        self.names.forget_holder(uid)
        if self._on_release is not None:
            await self._on_release(uid)

    # ---- the Broker port (core/ports.py says what each does while Redis is away) -----------
    async def publish(self, message: Message, ref: str | None) -> Message:
        return await self.fanout.publish(message, ref)

    async def signal(
        self, room: str, event: Event, sender: str | None, *, elsewhere: bool = False
    ) -> bool:
        return await self.fanout.signal(room, event, sender, elsewhere=elsewhere)

    async def direct(self, uid: str, event: Event) -> None:
        await self.fanout.direct(uid, event)

    async def history(
        self, room: str, after: int, limit: int | None = None
    ) -> tuple[list[Message], bool]:
        return await self.room_log.history(room, after, limit)

    async def last_id(self, room: str) -> int:
        return await self.room_log.last_id(room)

    async def delete(self, room: str, tombstone: ev.Deleted, sender: str | None) -> bool:
        return await self.fanout.delete(room, tombstone, sender)

    async def deletions(self, room: str, after: int) -> list[ev.Deleted]:
        return await self.room_log.deletions(room, after)

    async def join_room(self, room: str, member: Member) -> int:
        return await self.presence.join_room(room, member)

    async def leave_room(self, room: str, uid: str) -> int:
        return await self.presence.leave_room(room, uid)

    async def members(self, room: str) -> list[Member]:
        return await self.presence.members(room)

    async def room_counts(self) -> list[RoomInfo]:
        return await self.presence.room_counts()

    async def claim_name(self, key: str, uid: str) -> bool:
        return await self.names.claim_name(key, uid)

    async def release_name(self, key: str, uid: str) -> None:
        await self.names.release_name(key, uid)

    async def save_session(self, record: SessionRecord) -> None:
        await self.sessions.save_session(record)

    async def take_session(self, token_hash: str) -> tuple[SessionRecord, list[str]] | None:
        return await self.sessions.take_session(token_hash)

    async def drop_session(self, token_hash: str) -> None:
        await self.sessions.drop_session(token_hash)

    async def shared_secret(self, name: str) -> bytes:
        return await self.shared.shared_secret(name)

    async def set_flag(self, kind: str, key: str, ttl: float, value: str = "1") -> None:
        await self.shared.set_flag(kind, key, ttl, value)

    async def get_flag(self, kind: str, key: str) -> str | None:
        return await self.shared.get_flag(kind, key)

    async def clear_flag(self, kind: str, key: str) -> bool:
        return await self.shared.clear_flag(kind, key)

    async def flags(self, kind: str) -> dict[str, str]:
        return await self.shared.flags(kind)

    async def enqueue(self, queue: str, item: str, ttl: float, priority: int = 1) -> int:
        return await self.shared.enqueue(queue, item, ttl, priority)

    async def reprioritise(self, queue: str, item: str, priority: int) -> bool:
        return await self.shared.reprioritise(queue, item, priority)

    async def dequeue(self, queue: str, item: str | None = None) -> str | None:
        return await self.shared.dequeue(queue, item)

    async def queued(self, queue: str) -> list[str]:
        return await self.shared.queued(queue)

    async def file_report(
        self, report: FiledReport, ttl: float, most: int, per_reporter: int
    ) -> Filing:
        return await self.reports.file_report(report, ttl, most, per_reporter)

    async def list_reports(
        self, state: str, room: str | None, before: str | None, count: int
    ) -> tuple[list[KeptReport], bool]:
        return await self.reports.list_reports(state, room, before, count)

    async def mark_report(self, report_id: str, state: str) -> KeptReport | None:
        return await self.reports.mark_report(report_id, state)
