"""The embedded broker: one process, everything in memory, delivery synchronous and ordered.

It is also the reference for what every broker does (broker/redis/ does the same across
nodes); the shared-state part (flags, queues) expires on the wall clock it is given.
Nothing here is ever away, so no method raises BrokerUnavailable or degrades.

It forgets as Redis does (its keys expire): a room's messages once they are older than the
retention window, and the room itself (its id counter) once nobody has been in it and
nothing was said there for ROOM_TTL_FACTOR windows. `sweep` does it, once a second while
the broker runs; what nobody reads again must not stay in memory (the privacy promise is
"kept 10 minutes", and one-message rooms must not add up).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import struct
from array import array
from collections import deque
from collections.abc import Callable

import msgspec

from ..core.events import Deleted, Event, Member, Message, RoomInfo
from ..core.ports import (
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
from ..keys import derive

TOMBSTONE = 60.0  # seconds an ended session cannot be saved again (a save racing its end)
ROOM_TTL_FACTOR = 2  # an empty room's counter outlives its last use by 2 retention windows
SWEEP_EVERY = 1.0  # seconds between sweeps (on the event loop's clock)
GONE = "deleted"  # the kind of a deleted message's place in history: no text, never returned


class _Packed(SessionRecord, frozen=True, array_like=True):
    """A SessionRecord as the memory broker keeps it: msgpack, its fields in order (the token
    hash, the key it is kept under, left empty)."""


_PACK = msgspec.msgpack.Encoder().encode
_UNPACK = msgspec.msgpack.Decoder(_Packed).decode
_UNTIL = struct.Struct("<d")


def _kept(record: SessionRecord, until: float) -> bytes:
    """A resume record as kept: msgpack (the token hash left out: it is the key), then the
    time it expires. Kept for every person, connected or not: the record's objects (a
    struct, a dict or two, tuples) and a (record, until) pair cost ~600 B per idle
    connection, these bytes ~130."""
    return _PACK(("", *msgspec.structs.astuple(record)[1:])) + _UNTIL.pack(until)


def _until(kept: bytes) -> float:
    return float(_UNTIL.unpack_from(kept, len(kept) - _UNTIL.size)[0])


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
        self._on_room: RoomHandler = ignore_room
        self._on_direct: DirectHandler = ignore_direct
        self._history: dict[str, deque[Message]] = {}
        self._next_id: dict[str, int] = {}
        self._used: dict[str, float] = {}  # room -> when it last had a message or people
        self._members: dict[str, dict[str, Member]] = {}
        self._names = _Claims()
        self._sessions: dict[str, bytes] = {}  # token hash -> packed record + until (_kept)
        self._dropped: dict[str, float] = {}  # token hash -> until when it stays ended
        self._secret = secret or secrets.token_bytes(32)  # the operator's (keys.py)
        self._flags: dict[str, dict[str, tuple[str, float]]] = {}  # kind -> key -> (value, until)
        self._queues: dict[str, _Queue] = {}
        self._reports = _Reports()
        self._sweeper: asyncio.Task[None] | None = None
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
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_often())

    async def stop(self) -> None:
        self._on_room, self._on_direct = ignore_room, ignore_direct
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def _sweep_often(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            self.sweep()

    def sweep(self) -> None:
        """Forget what has expired: old messages, rooms nobody uses, sessions, flags, queues.
        O(rooms + records) once a second: cheap next to what each of them cost to make."""
        now = self.wallclock()
        for room, history in list(self._history.items()):
            self._prune(history)
            if not history:
                del self._history[room]
        for room in list(self._tombstones):
            self._forget_tombstones(room)
        for room in self._members:
            self._used[room] = now
        horizon = now - ROOM_TTL_FACTOR * self.retention_seconds
        for room in [r for r, used in self._used.items() if used < horizon]:
            if room not in self._history:  # (always so: messages go after one window)
                self._next_id.pop(room, None)
                del self._used[room]
        for token_hash in [h for h, kept in self._sessions.items() if _until(kept) < now]:
            del self._sessions[token_hash]
        for token_hash in [h for h, until in self._dropped.items() if until <= now]:
            del self._dropped[token_hash]
        for kind in list(self._flags):
            self._live_flags(kind, now)
        for name in [n for n, queue in self._queues.items() if queue.until <= now]:
            del self._queues[name]
        self._reports.expire(now)

    async def publish(self, message: Message, ref: str | None) -> Message:
        room = message.room
        next_id = self._next_id.get(room, 0) + 1
        self._next_id[room] = next_id
        self._used[room] = self.wallclock()
        stored = msgspec.structs.replace(message, id=next_id, ts=round(self.wallclock(), 3))
        history = self._history.setdefault(room, deque(maxlen=self.retention_messages))
        history.append(stored)
        self._prune(history)
        self._on_room(room, stored, stored.uid, ref)
        return stored

    async def signal(
        self, room: str, event: Event, sender: str | None, *, elsewhere: bool = False
    ) -> bool:
        if not elsewhere:  # one node: there is no elsewhere
            self._on_room(room, event, sender, None)
        return True

    async def direct(self, uid: str, event: Event) -> None:
        pending = self._on_direct(uid, event)
        if pending is not None:
            await pending

    def _prune(self, history: deque[Message]) -> None:
        horizon = self.wallclock() - self.retention_seconds
        while history and history[0].ts < horizon:
            history.popleft()

    async def history(
        self, room: str, after: int, limit: int | None = None
    ) -> tuple[list[Message], bool]:
        history = self._history.get(room, deque())
        self._prune(history)
        kept = [m for m in history if m.id > after]
        last = self._next_id.get(room, 0)
        first_kept = kept[0].id if kept else last + 1  # a deleted message's place counts
        missed = [m for m in kept if m.kind != GONE]
        return missed[:limit], first_kept <= after + 1 or after >= last

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
        self._prune(self._history.get(room, deque()))
        tombstones = self._forget_tombstones(room)
        return [tombstones[i] for i in sorted(tombstones) if i > after]

    def _forget_tombstones(self, room: str) -> dict[int, Deleted]:
        """Drop the tombstones whose places have left the room's history; the rest."""
        places = {m.id for m in self._history.get(room, ()) if m.kind == GONE}
        tombstones = self._tombstones.get(room, {})
        for expired in [i for i in tombstones if i not in places]:  # left the window
            del tombstones[expired]
        if not tombstones:
            self._tombstones.pop(room, None)
        return tombstones

    async def join_room(self, room: str, member: Member) -> int:
        members = self._members.setdefault(room, {})
        members[member.uid] = member
        return len(members)

    async def leave_room(self, room: str, uid: str) -> int:
        members = self._members.get(room, {})
        members.pop(uid, None)
        if not members and self._members.pop(room, None) is not None:
            self._used[room] = self.wallclock()
        return len(members)

    async def members(self, room: str) -> list[Member]:
        return list(self._members.get(room, {}).values())

    async def room_counts(self) -> list[RoomInfo]:
        return [RoomInfo(name, len(m)) for name, m in sorted(self._members.items())]

    async def claim_name(self, key: str, uid: str) -> bool:
        return self._names.claim(key, uid)

    async def release_name(self, key: str, uid: str) -> None:
        self._names.release(key, uid)

    # ---- resume ----------------------------------------------------------------------------
    async def save_session(self, record: SessionRecord) -> None:
        now = self.wallclock()
        if self._dropped.get(record.token_hash, 0.0) > now:
            return  # ended a moment ago: a late save must not revive it
        self._sessions[record.token_hash] = _kept(record, now + self.retention_seconds)

    async def take_session(self, token_hash: str) -> tuple[SessionRecord, list[str]] | None:
        kept = self._sessions.get(token_hash)
        if kept is None or _until(kept) < self.wallclock():
            self._sessions.pop(token_hash, None)
            return None
        unpacked = _UNPACK(memoryview(kept)[: -_UNTIL.size])
        record = SessionRecord(token_hash, *msgspec.structs.astuple(unpacked)[1:])
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
        kept = self._live_flags(kind, self.wallclock())
        return {key: value for key, (value, _) in kept.items()}

    def _live_flags(self, kind: str, now: float) -> dict[str, tuple[str, float]]:
        kept = self._flags.get(kind, {})
        for key in [k for k, (_, until) in kept.items() if until <= now]:
            del kept[key]
        if not kept:
            self._flags.pop(kind, None)
        return kept

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

    # ---- reports ---------------------------------------------------------------------------
    async def file_report(
        self, report: FiledReport, ttl: float, most: int, per_reporter: int
    ) -> Filing:
        now = self.wallclock()
        self._reports.expire(now)
        return self._reports.file(report, now + ttl, most, per_reporter)

    async def list_reports(
        self, state: str, room: str | None, before: str | None, count: int
    ) -> tuple[list[KeptReport], bool]:
        self._reports.expire(self.wallclock())
        return self._reports.page(state, room, before, count)

    async def mark_report(self, report_id: str, state: str) -> KeptReport | None:
        self._reports.expire(self.wallclock())
        return self._reports.mark(report_id, state)


class _Report:
    __slots__ = ("filed", "reporters", "state", "until")

    def __init__(self, filed: FiledReport, until: float) -> None:
        self.filed, self.until = filed, until
        self.state = "open"
        self.reporters = [filed.reporter]

    def kept(self) -> KeptReport:
        return KeptReport(self.filed.event, self.state, len(self.reporters))


class _Reports:
    """What the Redis broker's report scripts do, in memory: reports in filing order (a dict
    keeps it), the open one about each (room, person), and each reporter's open ones."""

    def __init__(self) -> None:
        self.kept: dict[str, _Report] = {}  # id -> report, oldest first
        self.about: dict[tuple[str, str], str] = {}  # (room, uid) -> open report id

    def expire(self, now: float) -> None:
        for report_id in [i for i, r in self.kept.items() if r.until <= now]:
            self._drop(report_id)

    def _drop(self, report_id: str) -> None:
        report = self.kept.pop(report_id)
        key = (report.filed.room, report.filed.about)
        if self.about.get(key) == report_id:
            del self.about[key]

    def _open_by(self, reporter: str) -> int:
        return sum(1 for r in self.kept.values() if r.state == "open" and reporter in r.reporters)

    def file(self, filed: FiledReport, until: float, most: int, per_reporter: int) -> Filing:
        existing = self.kept.get(self.about.get((filed.room, filed.about), ""))
        if existing is not None and filed.reporter in existing.reporters:
            return Filing("again", existing.filed.id, len(existing.reporters))
        if self._open_by(filed.reporter) >= per_reporter:
            return Filing("capped")
        if existing is not None:
            existing.reporters.append(filed.reporter)
            return Filing("merged", existing.filed.id, len(existing.reporters))
        self.kept[filed.id] = _Report(filed, until)
        self.about[(filed.room, filed.about)] = filed.id
        while len(self.kept) > most:
            handled = (i for i, r in self.kept.items() if r.state == "handled")
            self._drop(next(handled, next(iter(self.kept))))
        return Filing("new", filed.id, 1)

    def page(
        self, state: str, room: str | None, before: str | None, count: int
    ) -> tuple[list[KeptReport], bool]:
        found: list[KeptReport] = []
        newest_first = reversed(self.kept.items())
        if before is not None:  # skip up to and including `before` (none if it is gone)
            for report_id, _ in newest_first:
                if report_id == before:
                    break
        for _, report in newest_first:
            if report.state == state and room in (None, report.filed.room):
                if len(found) == count:
                    return found, True
                found.append(report.kept())
        return found, False

    def mark(self, report_id: str, state: str) -> KeptReport | None:
        report = self.kept.get(report_id)
        if report is None:
            return None
        report.state = state
        key = (report.filed.room, report.filed.about)
        if state != "open" and self.about.get(key) == report_id:
            del self.about[key]  # reported again later: a new report
        elif state == "open":
            self.about[key] = report_id
        return report.kept()


class _Queue:
    """Items ordered by (priority, arrival); the whole queue expires when left alone."""

    def __init__(self) -> None:
        self.order: dict[str, tuple[int, int]] = {}
        self.sequence = itertools.count()
        self.until = float("inf")

    def items(self) -> list[str]:
        return sorted(self.order, key=self.order.__getitem__)


class _Claims:
    """Name claims, key -> holder uid, kept small: everyone holds a dozen (their name's key
    and its one-letter deletions, names.claim_keys), so a dict of strings cost ~1.2 KB per
    idle connection. Here a claim is its key's 64-bit hash in an open-addressed table
    (linear probing, deletion by backward shift) beside a reference to the holder's uid
    (the session's own string): ~30 bytes. Two different keys with the same hash (odds
    about n / 2**64 per claim, and Python's string hash is keyed per process, so nobody
    can aim for one) would read as one: a name refused that was free, never two alike."""

    __slots__ = ("_count", "_hashes", "_holders", "_size")

    MIN_SIZE = 64
    MAX_LOAD = 0.8  # then grown by half: between 0.53 and 0.8 full, 12 probes at worst
    GROWTH = 1.5

    def __init__(self, size: int = MIN_SIZE) -> None:
        self._hashes = array("q", bytes(8 * size))
        self._holders: list[str | None] = [None] * size
        self._size = size
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _find(self, h: int) -> int:
        """The slot holding `h`, or the empty slot where it would go."""
        hashes, holders, size = self._hashes, self._holders, self._size
        i = h % size
        while holders[i] is not None and hashes[i] != h:
            i = (i + 1) % size
        return i

    def holder(self, key: str) -> str | None:
        return self._holders[self._find(hash(key))]

    def claim(self, key: str, uid: str) -> bool:
        """Hold `key` for `uid` unless someone else holds it; True if `uid` holds it."""
        h = hash(key)
        i = self._find(h)
        holder = self._holders[i]
        if holder is not None:
            return holder == uid
        self._hashes[i], self._holders[i] = h, uid
        self._count += 1
        if self._count > self.MAX_LOAD * self._size:
            self._resize(int(self.GROWTH * self._size))
        return True

    def release(self, key: str, uid: str) -> None:
        """Let go of `key` if `uid` holds it."""
        i = self._find(hash(key))
        if self._holders[i] != uid:
            return
        self._delete(i)
        self._count -= 1
        if self._size > self.MIN_SIZE and self._count < self._size // 8:
            self._resize(max(self.MIN_SIZE, self._size // 2))

    def _delete(self, i: int) -> None:
        """Empty slot i, moving back the entries after it that probed past it."""
        hashes, holders, size = self._hashes, self._holders, self._size
        j = i
        while True:
            holders[i] = None
            while True:
                j = (j + 1) % size
                if holders[j] is None:
                    return
                # it stays when its home lies cyclically in (i, j]: nearer than i
                if (j - hashes[j] % size) % size >= (j - i) % size:
                    break
            hashes[i], holders[i] = hashes[j], holders[j]
            i = j

    def _resize(self, size: int) -> None:
        hashes, holders = self._hashes, self._holders
        self._hashes = array("q", bytes(8 * size))
        self._holders = [None] * size
        self._size = size
        new_hashes, new_holders = self._hashes, self._holders
        for h, uid in zip(hashes, holders, strict=True):
            if uid is not None:
                i = h % size
                while new_holders[i] is not None:
                    i = (i + 1) % size
                new_hashes[i], new_holders[i] = h, uid
