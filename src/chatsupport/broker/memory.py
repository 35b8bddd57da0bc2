"""The embedded broker: one process, everything in memory, delivery synchronous and ordered.

It is also the reference for what every broker does (broker/redis/ does the same across
nodes); the shared-state part (flags, queues) expires on the wall clock it is given.
Nothing here is ever away, so no method raises BrokerUnavailable or degrades.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from collections.abc import Callable

import msgspec

from ..core.events import Deleted, Event, Member, Message, RoomInfo
from ..core.ports import (
    DirectHandler,
    HealthHandler,
    ReleaseHandler,
    RoomHandler,
    SessionRecord,
)
from ..keys import derive

TOMBSTONE = 60.0  # seconds an ended session cannot be saved again (a save racing its end)
GONE = "deleted"  # the kind of a deleted message's place in history: no text, never returned


def _ignore_room(room: str, event: Event, sender: str | None, ref: str | None) -> None:
    return None


def _ignore_direct(uid: str, event: Event) -> None:
    return None


class MemoryBroker:
    healthy = True  # nothing to lose touch with

    def __init__(
        self,
        retention_seconds: float,
        retention_messages: int,
        wallclock: Callable[[], float],
        secret: bytes | None = None,
    ) -> None:
        self.retention_seconds = retention_seconds
        self.retention_messages = retention_messages
        self.wallclock = wallclock
        self._on_room: RoomHandler = _ignore_room
        self._on_direct: DirectHandler = _ignore_direct
        self._history: dict[str, deque[Message]] = {}
        self._next_id: dict[str, int] = {}
        self._members: dict[str, dict[str, Member]] = {}
        self._names: dict[str, str] = {}
        self._sessions: dict[str, tuple[SessionRecord, float]] = {}  # token hash -> (, until)
        self._dropped: dict[str, float] = {}  # token hash -> until when it stays ended
        self._secret = secret or secrets.token_bytes(32)  # the operator's (keys.py)
        self._flags: dict[str, dict[str, tuple[str, float]]] = {}  # kind -> key -> (value, until)
        self._queues: dict[str, _Queue] = {}
        self._tombstones: dict[str, dict[int, Deleted]] = {}  # room -> id -> its `deleted`

    async def start(
        self,
        on_room: RoomHandler,
        on_direct: DirectHandler,
        on_release: ReleaseHandler | None = None,
        on_health: HealthHandler | None = None,
    ) -> None:
        # One node holds everyone, so nobody is ever adopted elsewhere (on_release is
        # unused), and nothing is ever away (nor is on_health).
        self._on_room, self._on_direct = on_room, on_direct

    async def stop(self) -> None:
        self._on_room, self._on_direct = _ignore_room, _ignore_direct

    async def publish(self, message: Message, ref: str | None) -> Message:
        room = message.room
        next_id = self._next_id.get(room, 0) + 1
        self._next_id[room] = next_id
        stored = msgspec.structs.replace(message, id=next_id, ts=round(self.wallclock(), 3))
        history = self._history.setdefault(room, deque(maxlen=self.retention_messages))
        history.append(stored)
        self._prune(history)
        self._on_room(room, stored, stored.uid, ref)
        return stored

    async def signal(self, room: str, event: Event, sender: str | None) -> None:
        self._on_room(room, event, sender, None)

    async def direct(self, uid: str, event: Event) -> None:
        pending = self._on_direct(uid, event)
        if pending is not None:
            await pending

    def _prune(self, history: deque[Message]) -> None:
        horizon = self.wallclock() - self.retention_seconds
        while history and history[0].ts < horizon:
            history.popleft()

    async def history(self, room: str, after: int) -> tuple[list[Message], bool]:
        history = self._history.get(room, deque())
        self._prune(history)
        kept = [m for m in history if m.id > after]
        last = self._next_id.get(room, 0)
        first_kept = kept[0].id if kept else last + 1  # a deleted message's place counts
        missed = [m for m in kept if m.kind != GONE]
        return missed, first_kept <= after + 1 or after >= last

    async def last_id(self, room: str) -> int:
        return self._next_id.get(room, 0)

    async def delete(self, room: str, tombstone: Deleted, sender: str | None) -> bool:
        history = self._history.get(room, deque())
        self._prune(history)
        for index, kept in enumerate(history):
            if kept.id == tombstone.id and kept.kind != GONE:
                # Its place stays (retention and `complete` count it), its words do not.
                history[index] = msgspec.structs.replace(kept, kind=GONE, text="")
                self._tombstones.setdefault(room, {})[kept.id] = tombstone
                self._on_room(room, tombstone, sender, None)
                return True
        return False

    async def deletions(self, room: str, after: int) -> list[Deleted]:
        history = self._history.get(room, deque())
        self._prune(history)
        places = {m.id for m in history if m.kind == GONE}
        tombstones = self._tombstones.get(room, {})
        for expired in [i for i in tombstones if i not in places]:  # left the window
            del tombstones[expired]
        if not tombstones:
            self._tombstones.pop(room, None)
        return [tombstones[i] for i in sorted(tombstones) if i > after]

    async def join_room(self, room: str, member: Member) -> int:
        members = self._members.setdefault(room, {})
        members[member.uid] = member
        return len(members)

    async def leave_room(self, room: str, uid: str) -> int:
        members = self._members.get(room, {})
        members.pop(uid, None)
        if not members:
            self._members.pop(room, None)
        return len(members)

    async def members(self, room: str) -> list[Member]:
        return list(self._members.get(room, {}).values())

    async def room_counts(self) -> list[RoomInfo]:
        return [RoomInfo(name, len(m)) for name, m in sorted(self._members.items())]

    async def claim_name(self, key: str, uid: str) -> bool:
        holder = self._names.setdefault(key, uid)
        return holder == uid

    async def release_name(self, key: str, uid: str) -> None:
        if self._names.get(key) == uid:
            del self._names[key]

    # ---- resume ----------------------------------------------------------------------------
    async def save_session(self, record: SessionRecord) -> None:
        now = self.wallclock()
        if self._dropped.get(record.token_hash, 0.0) > now:
            return  # ended a moment ago: a late save must not revive it
        self._sessions[record.token_hash] = (record, now + self.retention_seconds)

    async def take_session(self, token_hash: str) -> tuple[SessionRecord, list[str]] | None:
        kept = self._sessions.get(token_hash)
        if kept is None or kept[1] < self.wallclock():
            self._sessions.pop(token_hash, None)
            return None
        record = kept[0]
        present = [r for r in record.rooms if record.uid in self._members.get(r, {})]
        return record, present

    async def drop_session(self, token_hash: str) -> None:
        self._sessions.pop(token_hash, None)
        now = self.wallclock()
        for ended in [h for h, until in self._dropped.items() if until <= now]:
            del self._dropped[ended]
        self._dropped[token_hash] = now + TOMBSTONE

    async def shared_secret(self, name: str) -> bytes:
        return derive(self._secret, f"shared {name}")

    # ---- flags -----------------------------------------------------------------------------
    async def set_flag(self, kind: str, key: str, ttl: float, value: str = "1") -> None:
        self._flags.setdefault(kind, {})[key] = (value, self.wallclock() + ttl)

    async def get_flag(self, kind: str, key: str) -> str | None:
        return (await self.flags(kind)).get(key)

    async def clear_flag(self, kind: str, key: str) -> bool:
        found = key in await self.flags(kind)
        self._flags.get(kind, {}).pop(key, None)
        return found

    async def flags(self, kind: str) -> dict[str, str]:
        now = self.wallclock()
        kept = self._flags.get(kind, {})
        for key in [k for k, (_, until) in kept.items() if until <= now]:
            del kept[key]
        if not kept:
            self._flags.pop(kind, None)
        return {key: value for key, (value, _) in kept.items()}

    # ---- queues ----------------------------------------------------------------------------
    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is not None and queue.until <= self.wallclock():
            queue = None
        if queue is None:
            queue = self._queues[name] = _Queue()
        return queue

    async def enqueue(self, queue: str, item: str, ttl: float, priority: int = 1) -> int:
        kept = self._queue(queue)
        if item not in kept.order:
            kept.order[item] = (priority, next(kept.sequence))
        kept.until = self.wallclock() + ttl
        return kept.items().index(item) + 1

    async def reprioritise(self, queue: str, item: str, priority: int) -> bool:
        kept = self._queue(queue)
        if item not in kept.order:
            return False
        kept.order[item] = (priority, next(kept.sequence))
        return True

    async def dequeue(self, queue: str, item: str | None = None) -> str | None:
        kept = self._queue(queue)
        if item is None:
            items = kept.items()
            item = items[0] if items else None
        if item is None or kept.order.pop(item, None) is None:
            return None
        return item

    async def queued(self, queue: str) -> list[str]:
        return self._queue(queue).items()


class _Queue:
    """Items ordered by (priority, arrival); the whole queue expires when left alone."""

    def __init__(self) -> None:
        self.order: dict[str, tuple[int, int]] = {}
        self.sequence = itertools.count()
        self.until = float("inf")

    def items(self) -> list[str]:
        return sorted(self.order, key=self.order.__getitem__)
