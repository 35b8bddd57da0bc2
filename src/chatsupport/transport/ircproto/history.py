"""`draft/chathistory`: the client's query, and which retained messages answer it.

The messages come from the room's retention buffer (the broker's `history`), already cut
to what this person may see (nothing from before they came into the room, nothing
shadow-muted from others); this module only picks from them. Message references are
`msgid=ROOM.ID` (the ids this server gives) or `timestamp=ISO-8601`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from ...core import events as ev
from ...core.rooms import normalise_room
from .render import message_id, parse_time

SUBCOMMANDS = ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS")


@dataclass(frozen=True, slots=True)
class MsgRef:
    """A point in a room's history: a message id, or a time."""

    id: int | None = None
    ts: float | None = None

    def key(self, message: ev.Message) -> float:
        return message.id if self.id is not None else message.ts

    @property
    def value(self) -> float:
        return self.id if self.id is not None else (self.ts or 0.0)


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    subcommand: str
    rooms: tuple[str, ...]  # one room; TARGETS: every channel the client is in
    refs: tuple[MsgRef | None, ...]  # None: `*` (LATEST only)
    limit: int

    @property
    def target(self) -> str:
        return "#" + self.rooms[0] if self.rooms else "*"


class QueryError(ValueError):
    """A query this server cannot answer: `FAIL CHATHISTORY <code> ...`."""

    def __init__(self, code: str, context: str, text: str) -> None:
        super().__init__(text)
        self.code, self.context, self.text = code, context, text


def _ref(raw: str, room: str, *, star: bool = False) -> MsgRef | None:
    if raw == "*" and star:
        return None
    kind, _, value = raw.partition("=")
    if kind == "msgid":
        number = message_id(value, room)
        if number is not None:
            return MsgRef(id=number)
    elif kind == "timestamp":
        ts = parse_time(value)
        if ts is not None:
            return MsgRef(ts=ts)
    raise QueryError("INVALID_PARAMS", raw, "not a message reference this server gave")


def _limit(raw: str, most: int) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise QueryError("INVALID_PARAMS", raw, "the limit must be a positive number")
    return min(int(raw), most)


def parse_query(params: list[str], channels: set[str], most: int) -> HistoryQuery:
    """`CHATHISTORY <subcommand> ...` -> a query; QueryError says why not."""
    sub = params[0].upper() if params else ""
    if sub not in SUBCOMMANDS:
        raise QueryError("INVALID_PARAMS", sub or "*", "unknown subcommand")
    needed = {"BETWEEN": 5, "TARGETS": 4}.get(sub, 4)
    if len(params) < needed:
        raise QueryError("NEED_MORE_PARAMS", sub, "not enough parameters")
    if sub == "TARGETS":
        refs = (_ref(params[1], ""), _ref(params[2], ""))
        return HistoryQuery(sub, tuple(sorted(channels)), refs, _limit(params[3], most))
    room = normalise_room(params[1])
    if not params[1].startswith("#") or room not in channels:
        raise QueryError("INVALID_TARGET", params[1], "you are not in that channel")
    if sub == "BETWEEN":
        refs = (_ref(params[2], room), _ref(params[3], room))
        return HistoryQuery(sub, (room,), refs, _limit(params[4], most))
    return HistoryQuery(
        sub, (room,), (_ref(params[2], room, star=sub == "LATEST"),), _limit(params[3], most)
    )


def _count_before(messages: list[ev.Message], ref: MsgRef) -> int:
    """How many messages come strictly before `ref`."""
    return bisect_left(messages, ref.value, key=ref.key)


def _first_after(messages: list[ev.Message], ref: MsgRef) -> int:
    """The index of the first message strictly after `ref`."""
    return bisect_right(messages, ref.value, key=ref.key)


def select(query: HistoryQuery, messages: list[ev.Message]) -> list[ev.Message]:
    """The messages (oldest first, as given) that answer `query` for one room."""
    limit, ref = query.limit, query.refs[0]
    match query.subcommand:
        case "LATEST":
            start = 0 if ref is None else _first_after(messages, ref)
            return messages[start:][-limit:]
        case "BEFORE":
            assert ref is not None
            return messages[: _count_before(messages, ref)][-limit:]
        case "AFTER":
            assert ref is not None
            return messages[_first_after(messages, ref) :][:limit]
        case "AROUND":
            assert ref is not None
            middle = _count_before(messages, ref)
            start = max(0, middle - limit // 2)
            return messages[start : start + limit]
        case "BETWEEN":
            first, last = query.refs
            assert first is not None and last is not None
            if _count_before(messages, first) <= _count_before(messages, last):
                return messages[_first_after(messages, first) : _count_before(messages, last)][
                    :limit
                ]
            return messages[_first_after(messages, last) : _count_before(messages, first)][-limit:]
    return []


def targets(query: HistoryQuery, by_room: dict[str, list[ev.Message]]) -> list[tuple[str, float]]:
    """TARGETS: (room, time of its latest message) for rooms with a message between the
    two times, oldest first, at most `limit`."""
    first, last = query.refs
    assert first is not None and last is not None
    low, high = sorted((first.value, last.value))
    found = []
    for room, messages in by_room.items():
        inside = [m.ts for m in messages if low < m.ts < high]
        if inside:
            found.append((room, inside[-1]))
    found.sort(key=lambda item: item[1])
    return found[: query.limit]
