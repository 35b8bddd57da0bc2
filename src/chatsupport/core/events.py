"""What the server sends: one frozen vocabulary for every interface.

Each event is a msgspec Struct tagged with its `type`, so the JSON interface encodes it
directly; the text interface renders the same objects as lines. Encoded forms are cached
per event by the fan-out (see transport/outbox.py), so a message is encoded once per
interface, not once per recipient.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .vocabulary import ErrorCode, NoticeKind, ReplayCut, Role


class Event(msgspec.Struct, tag_field="type", omit_defaults=True, kw_only=True):
    ref: str | None = None


class Member(msgspec.Struct, omit_defaults=True):
    uid: str
    name: str
    role: Role | None = None
    away: bool = False  # their connection dropped; they may resume (shown, not counted here)


class RoomInfo(msgspec.Struct):
    name: str
    count: int


class Welcome(Event, tag="welcome"):
    session: str
    uid: str
    name: str
    room: str
    rooms: list[str]
    limits: dict[str, int | float]


class Message(Event, tag="message"):
    id: int
    room: str
    uid: str
    name: str
    role: Role | None
    kind: str  # say | me | announce
    text: str
    ts: float


class Presence(Event, tag="presence"):
    room: str
    event: str  # join | leave | nick | away | back
    uid: str
    name: str
    count: int  # everyone in the room, away or not
    old: str | None = None  # the previous name, for `nick`
    away: int = 0  # how many of `count` are away


class Joined(Event, tag="joined"):
    room: str
    count: int
    members: list[Member]
    last: int | None = None  # the room's last message id: where a later resume starts
    away: int = 0  # how many of `count` are away


class Deleted(Event, tag="deleted"):
    """Message `id` of `room` was deleted (by its author, or by a moderator: `moderated`);
    who wrote it, never what it said. Also the tombstone kept in the room's history."""

    room: str
    id: int
    uid: str
    name: str
    moderated: bool = False


class Typing(Event, tag="typing"):
    """`uid` is typing in the one-to-one chat `room` (shown for a few seconds)."""

    room: str
    uid: str
    name: str


class Left(Event, tag="left"):
    room: str


class Who(Event, tag="who"):
    room: str
    members: list[Member]
    count: int | None = None  # how many are in the room (more than listed when paged)
    page: int = 1
    more: bool = False  # a next page exists: `who {room, page: page + 1}`


class Rooms(Event, tag="rooms"):
    rooms: list[RoomInfo]
    count: int | None = None  # how many rooms are listed in all the pages
    page: int = 1
    more: bool = False


class Pong(Event, tag="pong"):
    pass


class Resumed(Event, tag="resumed"):
    missed: int
    complete: bool
    reason: ReplayCut | None = None  # the replay was cut short: why (else absent)


class Notice(Event, tag="notice"):
    kind: NoticeKind
    text: str
    resources: list[dict[str, Any]] | None = None
    region: str | None = None
    name: str | None = None
    # Regions with their own lines, [{code, name}], when the person is asked to choose one.
    regions: list[dict[str, str]] | None = None
    before: str | None = None  # a paged list's next page: send it back as `before`


class Matched(Event, tag="matched"):
    room: str
    partner: Member
    note: str | None = None  # to a listener: what the seeker wrote while waiting


class Queue(Event, tag="queue"):
    position: int
    listeners: int | None = None  # listeners on now (0: nobody is, right now)
    wait: float | None = None  # a likely wait in seconds, from recent waits (None: unknown)


class Ended(Event, tag="ended"):
    room: str
    reason: str


class Report(Event, tag="report"):
    id: str
    reporter: str  # an opaque alias (keyed hash, one per reporting session), never uid or name
    uid: str
    name: str
    room: str
    reason: str
    evidence: list[Message]
    ts: float
    state: str = "open"  # or "handled" (a moderator saw to it)
    count: int = 1  # reports about the same person in the same room, merged into this one


class Alert(Event, tag="alert"):
    kind: str
    room: str
    uid: str
    name: str
    text: str
    message_id: int | None = None


class Error(Event, tag="error"):
    code: ErrorCode
    message: str
    # A refused connection (banned, too many connections): where to find help meanwhile.
    resources: list[dict[str, Any]] | None = None


class Bye(Event, tag="bye"):
    reason: str


class Control(Event, tag="control"):
    """Between nodes only (an internal channel), never sent to a client: shared state of
    `kind` changed for `key` (`value` None: cleared), or an action on the person `key`."""

    kind: str
    key: str
    value: str | None = None


EventUnion = (
    Welcome
    | Message
    | Deleted
    | Typing
    | Presence
    | Joined
    | Left
    | Who
    | Rooms
    | Pong
    | Resumed
    | Notice
    | Matched
    | Queue
    | Ended
    | Report
    | Alert
    | Error
    | Bye
    | Control
)
