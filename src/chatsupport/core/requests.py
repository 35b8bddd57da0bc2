"""What a client asks for: one typed vocabulary shared by both interfaces.

The WebSocket interface decodes JSON frames straight into these Structs (msgspec checks
field types); the text interface and `say {text: "/..."}` reach the same Structs through
`commands.parse_command`. The core only ever sees these.
"""

from __future__ import annotations

import msgspec

from .vocabulary import BanScope


class Request(msgspec.Struct, tag_field="type", kw_only=True, forbid_unknown_fields=False):
    ref: str | None = None


class Say(Request, tag="say"):
    text: str
    room: str | None = None


class Me(Request, tag="me"):
    text: str
    room: str | None = None


class Delete(Request, tag="delete"):
    """Delete message `id` of `room` (your own; a moderator: anyone's). Without `id`, your
    newest message in the room (`/delete`)."""

    room: str | None = None
    id: int | None = None


class Typing(Request, tag="typing"):
    """You are typing in a one-to-one chat (never sent to group rooms)."""

    room: str | None = None


class Join(Request, tag="join"):
    room: str


class Leave(Request, tag="leave"):
    room: str | None = None


class Nick(Request, tag="nick"):
    name: str


class Who(Request, tag="who"):
    room: str | None = None
    page: int = 1  # a crowded room's members come `page_size` at a time


class Rooms(Request, tag="rooms"):
    page: int = 1


class Ping(Request, tag="ping"):
    pass


class Help(Request, tag="help"):
    topic: str | None = None


class Quit(Request, tag="quit"):
    pass


class Resume(Request, tag="resume"):
    session: str
    last: dict[str, int] = msgspec.field(default_factory=dict)


class Ignore(Request, tag="ignore"):
    uid: str | None = None
    name: str | None = None


class Unignore(Request, tag="unignore"):
    uid: str | None = None
    name: str | None = None


class Report(Request, tag="report"):
    reason: str = ""
    id: int | None = None
    room: str | None = None
    uid: str | None = None
    name: str | None = None


class Resources(Request, tag="resources"):
    region: str | None = None


class Region(Request, tag="region"):
    """The region whose help lines come first, for this session (None: say which it is)."""

    code: str | None = None


class Auth(Request, tag="auth"):
    token: str


class Talk(Request, tag="talk"):
    """Join the queue for a listener (again, without a note: leave it). `note`: what is on
    their mind, shown to the listener when they are matched; sent while queued, it replaces
    the one given before."""

    note: str | None = None


class End(Request, tag="end"):
    """End a one-to-one chat (like `leave`), and with `report` (a reason) report the other
    side in the same step."""

    room: str | None = None
    report: str | None = None


class Offer(Request, tag="offer"):
    """A listener offers a private chat to someone (e.g. after a crisis alert about them)."""

    uid: str | None = None
    name: str | None = None


class Debrief(Request, tag="debrief"):
    """A listener asks the moderators for a debrief after a hard conversation."""

    note: str = ""


class Feedback(Request, tag="feedback"):
    """After a one-to-one chat: did it help? (`helpful`, `not_really` or `skip`); counted
    in metrics only, never kept with anyone."""

    answer: str


class Listen(Request, tag="listen"):
    on: bool


class Forget(Request, tag="forget"):
    pass


class Handoff(Request, tag="handoff"):
    """A listener hands a one-to-one chat to another listener (any free one, or by name)."""

    room: str | None = None
    uid: str | None = None
    name: str | None = None
    note: str | None = None  # to the next listener; the seeker sees it too


class QueueStatus(Request, tag="queue"):
    """Moderators: how many wait for a listener and how many one-to-one chats are active."""


class Kick(Request, tag="kick"):
    uid: str | None = None
    name: str | None = None
    reason: str = ""


class Mute(Request, tag="mute"):
    uid: str | None = None
    name: str | None = None
    minutes: float = 10


class Ban(Request, tag="ban"):
    """Ban a person: their session and the id their client holds, and with `scope`
    "address" (`--ban-scope`'s default) the keyed hash of their network too; "person"
    spares everyone else behind a shared address."""

    uid: str | None = None
    name: str | None = None
    minutes: float = 60
    scope: BanScope | None = None  # None: the server's --ban-scope


class Shadow(Request, tag="shadow"):
    """Shadow-mute: the person's messages reach only themselves, and nothing tells them."""

    uid: str | None = None
    name: str | None = None
    minutes: float = 60


class Unban(Request, tag="unban"):
    uid: str | None = None
    name: str | None = None


class Announce(Request, tag="announce"):
    text: str
    room: str | None = None  # one room only (a private one-to-one room must be named)


class Slow(Request, tag="slow"):
    room: str
    seconds: float


class Lock(Request, tag="lock"):
    room: str


class Unlock(Request, tag="unlock"):
    room: str


class Reports(Request, tag="reports"):
    state: str = "open"  # or "handled"
    room: str | None = None  # every room when None
    before: str | None = None  # a report id: the page after it (the notice's `before`)


class Handled(Request, tag="handled"):
    id: str  # a report id


AnyRequest = (
    Say
    | Me
    | Delete
    | Typing
    | Join
    | Leave
    | Nick
    | Who
    | Rooms
    | Ping
    | Help
    | Quit
    | Resume
    | Ignore
    | Unignore
    | Report
    | Resources
    | Region
    | Auth
    | Talk
    | End
    | Offer
    | Debrief
    | Feedback
    | Listen
    | Forget
    | Handoff
    | QueueStatus
    | Kick
    | Mute
    | Ban
    | Shadow
    | Unban
    | Announce
    | Slow
    | Lock
    | Unlock
    | Reports
    | Handled
)

# Type names a client may send (used to tell `unknown_type` from `bad_request`).
TYPE_NAMES: frozenset[str] = frozenset(
    str(cls.__struct_config__.tag) for cls in AnyRequest.__args__
)
