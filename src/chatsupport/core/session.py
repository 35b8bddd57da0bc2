"""A person (Session) and one live connection of theirs (Link), as the core sees them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .events import Event, Member
from .limits import TokenBucket
from .ports import Sink


@dataclass(slots=True, eq=False)
class Session:
    """One anonymous person. Outlives its connection for the resume window."""

    uid: str
    token_hash: str
    name: str
    name_key: str
    bucket: TokenBucket
    created: float
    address_key: str = ""
    client_key: str = ""  # keyed hash of the random id their client holds (bans aim at it)
    role: str | None = None
    rooms: list[str] = field(default_factory=list)
    since: dict[str, int] = field(default_factory=dict)  # room -> newest id when they came in
    current: str | None = None  # where a plain line goes (text interface)
    present: bool = True  # registered as a member of `rooms` (false after the resume grace)
    ignored: frozenset[str] = frozenset()  # replaced, not mutated: most people ignore nobody
    crisis: bool = False  # their words matched the crisis list (priority for a listener)
    link: Link | None = None
    detached_at: float | None = None
    replay: list[tuple[str, Event]] | None = None  # live events held back while resuming
    # Events for them alone (`Chat.direct`) while away, the newest kept; and private rooms
    # they were taken out of meanwhile, room -> (first, last) ids: resume gives both back.
    away: deque[Event] | None = None
    departed: dict[str, tuple[int, int]] = field(default_factory=dict)

    def member(self) -> Member:
        return Member(self.uid, self.name, self.role)


@dataclass(slots=True, eq=False)
class Link:
    """One connection: the transport's sink, and whose it currently is (resume can switch it)."""

    sink: Sink
    session: Session
    address_key: str
    open: bool = True
    client_key: str = ""
    resumable: bool = True  # false once a moderator ended it: its close ends the person
