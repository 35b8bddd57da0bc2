"""The two edges the core talks through: a Sink per connection, and the Broker.

A Sink is one connected peer as the core sees it: `send` only queues (it never blocks or
awaits), `close` ends the connection after what is queued. The Broker owns everything
shared between nodes (ids and order, history, names, membership, what resume needs, and
small shared state for features) and delivers published events back to every node, this
one included, through the callbacks given to `start`.

The Broker plays a few roles, each a Protocol below, composed into `Broker`. Shared state
can be away for a while (Redis restarting); every method says what it does then: either
"raises BrokerUnavailable while shared state is away" (the request is refused with
`unavailable`), or "degrades: answers from this node's view" (and the broker writes what
this node did back when shared state returns). The broker reports the change through
`on_health`; the core decides what people are told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import msgspec

from .events import Deleted, Event, Member, Message, RoomInfo
from .vocabulary import Role

if TYPE_CHECKING:
    from .batch import Batch

RoomHandler = Callable[[str, Event, str | None, str | None], None]  # room, event, sender uid, ref
# uid, event; what it returns (if anything) is awaited before the next delivery
DirectHandler = Callable[[str, Event], Awaitable[None] | None]
ReleaseHandler = Callable[[str], Awaitable[None]]  # uid: another node adopted this person
HealthHandler = Callable[[bool], None]  # shared state is reachable again (True) or away (False)


def ignore_room(room: str, event: Event, sender: str | None, ref: str | None) -> None:
    """A broker's RoomHandler before `start` and after `stop`: deliveries go nowhere."""
    return None


def ignore_direct(uid: str, event: Event) -> None:
    """A broker's DirectHandler before `start` and after `stop`."""
    return None


class SessionRecord(msgspec.Struct, frozen=True):
    """What another node needs to adopt a person on resume (never the token, only its hash)."""

    token_hash: str
    uid: str
    name: str
    role: Role | None = None
    rooms: tuple[str, ...] = ()
    current: str | None = None
    ignored: tuple[str, ...] = ()
    crisis: bool = False
    region: str | None = None  # the help lines they chose (or their page guessed) to see first
    since: dict[str, int] = msgspec.field(default_factory=dict)  # room -> id when they came in
    # private rooms ended while they were away -> (first, last) id to replay
    departed: dict[str, tuple[int, int]] = msgspec.field(default_factory=dict)


class Sink(Protocol):
    """What the core asks of a peer is what it can do (the capabilities below), never which
    interface it is: a new transport declares them and the core needs no change."""

    @property
    def interface(self) -> str:
        """A name for this kind of peer (`text`, `json`) for metrics; nothing depends on it."""
        ...

    @property
    def echoes_own(self) -> bool:
        """Gets its own room messages back, with their `ref` (so every client sees one order)."""
        ...

    @property
    def can_resume(self) -> bool:
        """Its session outlives the connection: kept for a `resume` within the grace period."""
        ...

    @property
    def shares(self) -> bool:
        """Can take a room's batch of events whole (`send_batch`), rendered once for all."""
        ...

    def send(self, event: Event) -> None: ...

    def send_batch(self, batch: Batch) -> None:
        """Every event of `batch` (`shares` only), as `send` of each would; the core calls it
        only when all of them go to this peer unchanged."""
        ...

    def close(self, reason: str) -> None: ...

    @property
    def backlogged(self) -> bool:
        """More than a low-water mark waits to be written to this peer (or the connection is
        closing): what the server sends in bulk (a resume's replay) waits for `when_drained`
        rather than fill the outbox, whose limit is for live traffic."""
        ...

    def when_drained(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` once the peer has read what waits down to the low-water mark; the
        connection's later requests wait for it. Never, if the connection ends first. The
        core never awaits a peer: it leaves the rest of its work to this."""
        ...


class AddressPeriods(Protocol):
    """Address keys as shared state holds them. The core gets a connection's *root* key (a
    keyed hash of its address, kept in this node's memory only); bans are shared under
    *period* keys derived from it, which change on a schedule (keys.py). Without one
    (tests of the core alone) the root key is shared as it is (`Unrotated`)."""

    def current(self, root: str) -> tuple[str, ...]:
        """The keys a connection from `root` is checked against now (the overlap: more
        than one)."""
        ...

    def spanning(self, root: str, seconds: float) -> list[tuple[str, float]]:
        """The keys a ban of `seconds` must be shared under, each with how long it is
        needed (never longer than the ban)."""
        ...


class Unrotated:
    """AddressPeriods where the root key is the only key (one process, tests)."""

    def current(self, root: str) -> tuple[str, ...]:
        return (root,)

    def spanning(self, root: str, seconds: float) -> list[tuple[str, float]]:
        return [(root, seconds)]


class BrokerUnavailable(Exception):
    """The broker cannot take this now (e.g. Redis is down); the request gets `unavailable`."""


class Lifecycle(Protocol):
    @property
    def healthy(self) -> bool:
        """False while shared state cannot be reached (/healthz then says "degraded")."""
        ...

    async def start(
        self,
        on_room: RoomHandler,
        on_direct: DirectHandler,
        on_release: ReleaseHandler | None = None,
        on_health: HealthHandler | None = None,
    ) -> None:
        """Deliver through these from now on. Raises BrokerUnavailable if shared state
        cannot be reached at all. `on_health(False)` is called once when it goes away
        after that, `on_health(True)` once when it is back and caught up."""
        ...

    async def stop(self) -> None: ...


class RoomLog(Protocol):
    """Each room's messages: ids, order and the retained history."""

    async def publish(self, message: Message, ref: str | None) -> Message:
        """Give `message` the room's next id, keep it in history and deliver it everywhere.
        Raises BrokerUnavailable while shared state is away (nothing is queued for later)."""
        ...

    async def history(
        self, room: str, after: int, limit: int | None = None
    ) -> tuple[list[Message], bool]:
        """Messages with id > `after` still retained, oldest first: the oldest `limit` of
        them (a page; all without), and whether nothing after `after` is gone (up to the
        room's newest id, whatever the page holds). Raises BrokerUnavailable while shared
        state is away."""
        ...

    async def last_id(self, room: str) -> int:
        """The room's newest id. Degrades: answers from this node's view (the newest id it
        has seen)."""
        ...

    async def delete(self, room: str, tombstone: Deleted, sender: str | None) -> bool:
        """Take message `tombstone.id` out of `room`'s retained history for good (its text
        is not kept), keep `tombstone` in its place for the retention window, and deliver
        it to the room everywhere (after the message itself). False, and nothing delivered,
        when that message is no longer retained or was deleted already. `history` never
        returns it again, and a deleted message still counts as retained for `complete`.
        Raises BrokerUnavailable while shared state is away."""
        ...

    async def deletions(self, room: str, after: int) -> list[Deleted]:
        """The tombstones of `room` with id > `after`, in id order (a resume tells a client
        which of the messages it has were deleted meanwhile). Raises BrokerUnavailable
        while shared state is away."""
        ...


class Fanout(Protocol):
    """Events without an id, delivered to every node (rooms) or to one person."""

    async def signal(
        self, room: str, event: Event, sender: str | None, *, elsewhere: bool = False
    ) -> bool:
        """Deliver a transient room event (presence, staff channels) everywhere; with
        `elsewhere`, on every node but this one (whose people heard it already). Degrades:
        only this node's people get it (none with `elsewhere`), and it answers False, so a
        caller that must reach every node can send it again `elsewhere` later."""
        ...

    async def direct(self, uid: str, event: Event) -> None:
        """Deliver `event` to the person `uid` on whichever node holds them. Raises
        BrokerUnavailable while shared state is away."""
        ...


class Membership(Protocol):
    """Who is in which room, over every node."""

    async def join_room(self, room: str, member: Member) -> int:
        """Count `member` in `room`; the room's count. Degrades: answers from this node's
        view (its own people), and counts them everywhere once shared state is back."""
        ...

    async def leave_room(self, room: str, uid: str) -> int:
        """The room's count after `uid` left. Degrades: answers from this node's view."""
        ...

    async def members(self, room: str) -> list[Member]:
        """Degrades: answers from this node's view (its own people in `room`)."""
        ...

    async def room_counts(self) -> list[RoomInfo]:
        """Rooms with people, by name. Degrades: answers from this node's view."""
        ...


class Names(Protocol):
    """Display names, each held by one person at a time."""

    async def claim_name(self, key: str, uid: str) -> bool:
        """Whether `uid` holds the name `key` now. Degrades: answers from this node's view
        (only its own people are checked; a clash found when shared state is back is logged
        and both keep the name until one changes it)."""
        ...

    async def release_name(self, key: str, uid: str) -> None:
        """Degrades: released on this node at once, everywhere once shared state is back."""
        ...


class Sessions(Protocol):
    """What resume needs, on any node."""

    async def save_session(self, record: SessionRecord) -> None:
        """Keep `record` for the retention window (cheap when it has not changed).
        Degrades: kept on this node, written when shared state is back."""
        ...

    async def take_session(self, token_hash: str) -> tuple[SessionRecord, list[str]] | None:
        """Adopt a person kept by any node: their record, and the rooms they are still shown
        in. The node that held them is told (`on_release`) and lets go without a word.
        Raises BrokerUnavailable while shared state is away."""
        ...

    async def drop_session(self, token_hash: str) -> None:
        """The session ended: it cannot be taken or saved again. Degrades: at once on this
        node, everywhere once shared state is back."""
        ...


class SharedState(Protocol):
    """Small shared state for features (moderation, matching). Every method raises
    BrokerUnavailable while shared state is away."""

    async def shared_secret(self, name: str) -> bytes:
        """A 32-byte secret that every node sharing this broker gets the same of, derived
        from the operator's secret (keys.py); never stored in shared state, so it is there
        while shared state is away."""
        ...

    # Flags: `kind` is a namespace ("ban", "mute", ...), `key` an id in it; each expires.
    async def set_flag(self, kind: str, key: str, ttl: float, value: str = "1") -> None: ...

    async def get_flag(self, kind: str, key: str) -> str | None: ...

    async def clear_flag(self, kind: str, key: str) -> bool: ...

    async def flags(self, kind: str) -> dict[str, str]:
        """Every live flag of `kind`, key -> value."""
        ...

    # Queues: ordered by priority (lower first), then by arrival; each item at most once.
    async def enqueue(self, queue: str, item: str, ttl: float, priority: int = 1) -> int:
        """Add `item` (a no-op if queued); its position, from 1. The queue expires `ttl`
        seconds after it last changed."""
        ...

    async def reprioritise(self, queue: str, item: str, priority: int) -> bool:
        """Move a queued item to `priority`, behind the items already there."""
        ...

    async def dequeue(self, queue: str, item: str | None = None) -> str | None:
        """Take `item` (or the first) out; what was taken, None if it was not there. Only
        one node ever takes a given item."""
        ...

    async def queued(self, queue: str) -> list[str]: ...


class FiledReport(msgspec.Struct, frozen=True):
    """A new report as the broker files it: the event (JSON) and what it is indexed by."""

    id: str
    room: str
    reporter: str  # the reporter's alias
    about: str  # the reported person's uid
    event: str  # the `report` event, JSON


class Filing(msgspec.Struct, frozen=True):
    """What became of a report: `new`; `merged` into the open report `id` about the same
    person in the same room (now `count` reports); `again` (this reporter already has
    that one); `capped` (this reporter has as many open reports as they may)."""

    outcome: str
    id: str = ""
    count: int = 0


class KeptReport(msgspec.Struct, frozen=True):
    event: str  # JSON, as filed
    state: str  # "open" or "handled"
    count: int  # reports merged into it


class ReportLog(Protocol):
    """Reports, bounded in number and listed a page at a time, newest first, by state
    ("open", "handled") and room. Every method raises BrokerUnavailable while shared state
    is away."""

    async def file_report(
        self, report: FiledReport, ttl: float, most: int, per_reporter: int
    ) -> Filing:
        """Keep `report` for `ttl` seconds, or merge it into the open one about the same
        person in the same room. A reporter holds at most `per_reporter` open reports;
        past `most` reports in all, the oldest handled go first, then the oldest open."""
        ...

    async def list_reports(
        self, state: str, room: str | None, before: str | None, count: int
    ) -> tuple[list[KeptReport], bool]:
        """Up to `count` reports in `state` (of `room`), newest first, older than the report
        `before`; and whether there are more."""
        ...

    async def mark_report(self, report_id: str, state: str) -> KeptReport | None:
        """Move a report to `state`; what it is now, None if it is not kept (any more)."""
        ...


class Broker(
    Lifecycle, RoomLog, Fanout, Membership, Names, Sessions, SharedState, ReportLog, Protocol
):
    """Everything shared between nodes (broker/memory.py for one process, broker/redis/ for
    many)."""
