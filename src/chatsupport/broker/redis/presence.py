"""Who is where: each node's lease, and its people in per-node hashes under that lease, so
a node that dies stops being counted when its lease ends (docs/architecture.md, "Presence").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio.client import Pipeline

from ...core.events import Member, RoomInfo
from . import wire
from .connection import Link, degrades
from .delivery import Delivery

LEASES_KEPT = 3  # a node's keys outlive its lease by this many leases, unless renewed
REAPED_TTL = 86400.0  # how long a reaped node's marker waits for it to come back


class Lease:
    """This node's lease in `P nodes`, renewed by heartbeats, which also tell how far
    Redis' clock is from ours (a publish carries a deadline in Redis' time)."""

    def __init__(self, link: Link, wallclock: Callable[[], float]) -> None:
        self.link = link
        self.wallclock = wallclock
        self._offset = 0.0  # Redis' time minus ours, in seconds

    def redis_time(self) -> float:
        """Now on Redis' clock, as far as we know."""
        return self.wallclock() + self._offset

    async def renew(self, *, rejoin: bool = False) -> bool:
        """False: Redis had forgotten us (it restarted, or we were silent past the lease).
        A forgotten node comes back only with `rejoin` (resynchronising): until then, its
        publishes are refused (PUBLISH checks the lease), so none of its people speaks
        before they are shown as back."""
        link = self.link
        before = self.wallclock()
        args = [link.node, wire.ms(link.lease), int(rejoin)]
        known, now = await link.run("HEARTBEAT", [link.key("nodes")], args)
        self._offset = int(now) / 1000 - (before + self.wallclock()) / 2
        return bool(known)

    async def end(self) -> list[wire.Gone]:
        """Go as a dead node goes, but at once: our lease ends now and we reap ourselves."""
        await self.link.redis.zadd(self.link.key("nodes"), {self.link.node: 0})
        return await self.reap()

    async def reap(self) -> list[wire.Gone]:
        """The people of nodes whose lease ran out (their keys go): to announce as gone."""
        link = self.link
        args = [link.prefix, wire.ms(REAPED_TTL), link.node]
        return wire.gone(await link.run("REAP", [link.key("nodes")], args))

    async def was_reaped(self) -> bool:
        """Whether another node announced our people as gone (we were stalled past the
        lease); `reaped_done` once they have been announced as back."""
        return bool(await self.link.redis.exists(self.link.key("reaped", self.link.node)))

    async def reaped_done(self) -> None:
        await self.link.redis.delete(self.link.key("reaped", self.link.node))


class Presence:
    def __init__(self, link: Link, delivery: Delivery) -> None:
        self.link = link
        self.delivery = delivery
        # This node's people by room, also kept here to write back after an outage.
        self.local: dict[str, dict[str, Member]] = {}
        # Changes and reads go to Redis one at a time, in the order they were made: a `who`
        # after a leave on the same node never shows the one who left.
        self._order = asyncio.Lock()

    def _keys(self, room: str) -> list[str]:
        return [self.link.key("m", self.link.node, room), self.link.key("nr", self.link.node)]

    def _lease_ms(self) -> int:
        return LEASES_KEPT * wire.ms(self.link.lease)

    async def join_room(self, room: str, member: Member) -> int:
        self.local.setdefault(room, {})[member.uid] = member
        feed = self.delivery.open(room)
        async with self._order:
            count, last = await self._join(room, member)
        if last is not None:
            await self.delivery.start(room, feed, last)
        return count

    def _joined_here(self, room: str, member: Member) -> tuple[int, int | None]:
        return len(self.local.get(room, {})), None  # written back when Redis is back

    @degrades(_joined_here)
    async def _join(self, room: str, member: Member) -> tuple[int, int | None]:
        """The room's count, and its last id at the moment of joining."""
        link = self.link
        count, last = await link.run(
            "JOIN",
            [*self._keys(room), link.key("seq", room)],
            [link.prefix, room, member.uid, wire.encode(member), self._lease_ms()],
        )
        return int(count), int(last)

    async def leave_room(self, room: str, uid: str) -> int:
        left = self.forget(room, uid)
        async with self._order:
            return await self._leave(room, uid, left)

    def _left_here(self, room: str, uid: str, left: int) -> int:
        return left

    @degrades(_left_here)
    async def _leave(self, room: str, uid: str, left: int) -> int:
        return int(await self.link.run("LEAVE", self._keys(room), [self.link.prefix, room, uid]))

    def forget(self, room: str, uid: str) -> int:
        """`uid` is no longer in `room` on this node; how many are left here."""
        members = self.local.get(room, {})
        members.pop(uid, None)
        if not members:
            self.local.pop(room, None)
            self.delivery.close(room)
        return len(members)

    def forget_everywhere(self, uid: str) -> None:
        for room in [r for r, members in self.local.items() if uid in members]:
            self.forget(room, uid)

    async def members(self, room: str) -> list[Member]:
        async with self._order:
            return await self._members(room)

    def _members_here(self, room: str) -> list[Member]:
        return list(self.local.get(room, {}).values())

    @degrades(_members_here)
    async def _members(self, room: str) -> list[Member]:
        found = await self.link.run("MEMBERS", [], [self.link.prefix, room])
        unique = {m.uid: m for m in map(wire.member, found)}  # one per person, on any node
        return list(unique.values())

    async def room_counts(self) -> list[RoomInfo]:
        async with self._order:
            return await self._room_counts()

    def _counts_here(self) -> list[RoomInfo]:
        return [RoomInfo(room, len(m)) for room, m in sorted(self.local.items())]

    @degrades(_counts_here)
    async def _room_counts(self) -> list[RoomInfo]:
        return await self.room_counts_now()

    async def room_counts_now(self) -> list[RoomInfo]:
        """Counts over live nodes, whatever our state (resynchronising)."""
        flat = await self.link.run("ROOM_COUNTS", [], [self.link.prefix])
        counts = sorted((room, int(n)) for room, n in wire.pairs(flat))
        return [RoomInfo(room, n) for room, n in counts if n > 0]

    # ---- heartbeat and resynchronising -----------------------------------------------------
    def renew(self, pipe: Pipeline, seq_ttl_ms: int) -> None:
        """Keep this node's membership keys alive (and its rooms' counters: ids never start
        over under people in a quiet room)."""
        link = self.link
        for room in self.local:
            pipe.pexpire(link.key("m", link.node, room), self._lease_ms())
            pipe.pexpire(link.key("seq", room), seq_ttl_ms)
        pipe.pexpire(link.key("nr", link.node), self._lease_ms())

    async def rewrite(self) -> None:
        """Write this node's share back as it is now, whatever Redis had."""
        link = self.link
        rooms_key = link.key("nr", link.node)
        before = {wire.text(r) for r in await link.redis.smembers(rooms_key)}
        pipe = link.redis.pipeline(transaction=True)
        for room in before | set(self.local):
            pipe.delete(link.key("m", link.node, room))
        pipe.delete(rooms_key)
        for room, members in self.local.items():
            if members:
                key = link.key("m", link.node, room)
                pipe.hset(key, mapping={uid: wire.encode(m) for uid, m in members.items()})
                pipe.pexpire(key, self._lease_ms())
                pipe.sadd(rooms_key, room)
        pipe.pexpire(rooms_key, self._lease_ms())
        await pipe.execute()
