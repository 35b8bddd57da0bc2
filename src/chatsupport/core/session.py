"""A person (Session) and one live connection of theirs (Link), as the core sees them."""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import Member
from .lifecycle import Life, State
from .limits import TokenBucket
from .ports import Sink
from .vocabulary import Role


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
    role: Role | None = None
    rooms: list[str] = field(default_factory=list)
    since: dict[str, int] = field(default_factory=dict)  # room -> newest id when they came in
    current: str | None = None  # where a plain line goes (text interface)
    ignored: frozenset[str] = frozenset()  # replaced, not mutated: most people ignore nobody
    crisis: bool = False  # their words matched the crisis list (priority for a listener)
    region: str | None = None  # help lines shown first (`/region GB`); for this session only
    # Connected, resuming, away, withdrawn or ended, and what waits for them (lifecycle.py).
    life: Life = field(default_factory=Life)

    @property
    def link(self) -> Link | None:
        """Their open connection, if they have one now."""
        return self.life.link

    @property
    def present(self) -> bool:
        """Shown as a member of `rooms` (false once the resume grace is over)."""
        return self.life.present

    def member(self) -> Member:
        """How the room lists them: away while their connection is gone within the grace."""
        return Member(self.uid, self.name, self.role, away=self.life.state is State.AWAY)


@dataclass(slots=True, eq=False)
class Link:
    """One connection: the transport's sink, and whose it currently is (resume can switch it)."""

    sink: Sink
    session: Session
    address_key: str
    open: bool = True
    client_key: str = ""
    resumable: bool = True  # false once a moderator ended it: its close ends the person
    replies: int = 0  # answers sent on it (`Chat.reply`): an answered request is not refused
