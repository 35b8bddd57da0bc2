"""The embedded broker: one process, everything in memory, delivery synchronous and ordered."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import msgspec

from ..core.events import Event, Member, Message, RoomInfo
from ..core.ports import DirectHandler, RoomHandler


def _ignore_room(room: str, event: Event, sender: str | None, ref: str | None) -> None:
    return None


def _ignore_direct(uid: str, event: Event) -> None:
    return None


class MemoryBroker:
    def __init__(
        self, retention_seconds: float, retention_messages: int, wallclock: Callable[[], float]
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

    async def start(self, on_room: RoomHandler, on_direct: DirectHandler) -> None:
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
        self._on_direct(uid, event)

    def _prune(self, history: deque[Message]) -> None:
        horizon = self.wallclock() - self.retention_seconds
        while history and history[0].ts < horizon:
            history.popleft()

    async def history(self, room: str, after: int) -> tuple[list[Message], bool]:
        history = self._history.get(room, deque())
        self._prune(history)
        missed = [m for m in history if m.id > after]
        last = self._next_id.get(room, 0)
        first_kept = missed[0].id if missed else last + 1
        return missed, first_kept <= after + 1 or after >= last

    async def last_id(self, room: str) -> int:
        return self._next_id.get(room, 0)

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
