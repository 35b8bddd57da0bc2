"""A session's life, from its first connection to its end, and resume.

The states (a person, not a connection: a session outlives its connection for resume):

    NEW        made, no connection yet
    CONNECTED  one open connection (`link`); live events go out as they come
    RESUMING   a connection took the session over (`attach`); live room and direct events
               are held back (`held`) while history replays, then released (`replayed`)
    AWAY       the connection closed within the resume grace (`detach`): still a member
               of their rooms, shown as away (`presence away`, then `back` when a
               connection takes them over); events for them alone are kept (the newest
               AWAY_KEPT), room events are left to history
    WITHDRAWN  grace over (`withdraw`): shown gone (the chat left their rooms) but
               resumable until retention ends; resume enters their rooms again
    ENDED      quit, forgotten, kicked, retention over, or adopted by another node:
               never resumed here

The rules this module keeps (nothing else writes a session's state, link, held or kept
events; tests/core/test_lifecycle.py checks the source):
- Transitions are the table `TRANSITIONS`, the only way a state changes; any other step
  raises `LifecycleError`. Ending twice is not a step: `end` answers False.
- A connection holds live events for one reply (`hold`: a join's `joined`, `welcome`)
  whatever the state; in RESUMING they are held until the replay is done, and a join
  during a resume adds nothing of its own.
- After a replay the person gets, in this order: the replayed history, what was kept for
  them while away, the live events held meanwhile (without those the replay already
  gave), then `resumed`.
- A private room a person is taken out of while not connected, or while resuming, is
  noted in `departed` (room -> first, last id) so their next replay gives it up to its
  end; a replay that reaches the connection forgets them.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections import deque
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import events as ev

if TYPE_CHECKING:
    from .chat import Chat
    from .session import Link, Session

log = logging.getLogger("chatsupport.core")

AWAY_KEPT = 50  # direct events kept for a person who is away, to follow their resume


class State(enum.Enum):
    NEW = "new"
    CONNECTED = "connected"
    RESUMING = "resuming"
    AWAY = "away"
    WITHDRAWN = "withdrawn"
    ENDED = "ended"


class Step(enum.Enum):
    CONNECT = "connect"  # the first connection
    RESTORE = "restore"  # rebuilt from another node's record, for the resume that follows
    ATTACH = "attach"  # a connection (a new one, or theirs again) resumes the session
    REPLAYED = "replayed"  # the resume's replay is done: held events are released
    DETACH = "detach"  # the connection closed, resumable
    WITHDRAW = "withdraw"  # the resume grace is over
    END = "end"  # for good


S = State
TRANSITIONS: Mapping[State, Mapping[Step, State]] = MappingProxyType(
    {
        S.NEW: {Step.CONNECT: S.CONNECTED, Step.RESTORE: S.AWAY, Step.END: S.ENDED},
        S.CONNECTED: {Step.ATTACH: S.RESUMING, Step.DETACH: S.AWAY, Step.END: S.ENDED},
        S.RESUMING: {
            Step.ATTACH: S.RESUMING,
            Step.REPLAYED: S.CONNECTED,
            Step.DETACH: S.AWAY,
            Step.END: S.ENDED,
        },
        S.AWAY: {Step.ATTACH: S.RESUMING, Step.WITHDRAW: S.WITHDRAWN, Step.END: S.ENDED},
        S.WITHDRAWN: {Step.ATTACH: S.RESUMING, Step.END: S.ENDED},
        S.ENDED: {},
    }
)
PRESENT = frozenset({S.NEW, S.CONNECTED, S.RESUMING, S.AWAY})  # members of their rooms
DETACHED = frozenset({S.AWAY, S.WITHDRAWN})  # resumable, without a connection


class LifecycleError(RuntimeError):
    """A step the table does not allow from the current state (a bug, not bad input)."""


Held = list[tuple[str, ev.Event]]  # (room, event); room "" for a direct event


class Life:
    """One session's state, its connection, and what waits for it.

    `state`, `link` and `held` are plain attributes so that the fan-out reads them at the
    cost of a slot; only this module writes them (tests/core/test_lifecycle.py checks)."""

    __slots__ = ("_away", "_departed", "_since_detached", "held", "link", "state")

    def __init__(self) -> None:
        self.state = State.NEW
        self.link: Link | None = None  # the open connection (CONNECTED, RESUMING)
        self.held: Held | None = None  # live events held back (a reply, a replay)
        self._since_detached: float | None = None  # clock time of the detach
        self._away: deque[ev.Event] | None = None  # direct events while not connected
        self._departed: dict[str, tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"<Life {self.state.value}>"

    # ---- questions ------------------------------------------------------------------------
    @property
    def present(self) -> bool:
        """A member of their rooms: shown to others (false once withdrawn or ended)."""
        return self.state in PRESENT

    @property
    def departed(self) -> Mapping[str, tuple[int, int]]:
        return MappingProxyType(self._departed)

    def idle(self, now: float) -> float | None:
        """Seconds since the connection closed, while resumable without one; else None."""
        if self.state not in DETACHED or self._since_detached is None:
            return None
        return now - self._since_detached

    # ---- transitions ----------------------------------------------------------------------
    def _step(self, step: Step) -> None:
        """The only place the state changes."""
        following = TRANSITIONS[self.state].get(step)
        if following is None:
            raise LifecycleError(f"cannot {step.value} a session that is {self.state.value}")
        self.state = following

    def connect(self, link: Link) -> None:
        self._step(Step.CONNECT)
        self.link = link

    def restore(self, now: float, departed: Mapping[str, tuple[int, int]]) -> None:
        """Rebuilt here from another node's record: away until the resume attaches."""
        self._step(Step.RESTORE)
        self._since_detached = now
        self._departed = dict(departed)

    def attach(self, link: Link) -> Link | None:
        """`link` resumes the session; live events wait for the replay. Returns the other
        connection the session still had, for the caller to close."""
        previous = self.link if self.link is not link else None
        self._step(Step.ATTACH)
        self.link, self._since_detached = link, None
        if self.held is None:  # held since connecting with the token: kept
            self.held = []
        return previous

    def replayed(self, link: Link) -> None:
        """The replay on `link` is done: what was kept while away, then the live events
        held meanwhile, in the order they came. Nothing if `link` is no longer theirs
        (it closed meanwhile, or another connection resumed them)."""
        if self.link is not link or self.state is not State.RESUMING:
            return
        self._step(Step.REPLAYED)
        held, self.held = self.held or [], None
        kept, self._away = self._away or (), None
        for event in kept:
            _send(link, event)
        for _, event in held:
            _send(link, event)

    def detach(self, now: float) -> None:
        """The connection closed and they may resume: direct events held for a replay cut
        short are kept (history has the room events)."""
        self._step(Step.DETACH)
        held, self.held = self.held or [], None
        self.link, self._since_detached = None, now
        for room, event in held:
            if not room:
                self._keep(event)

    def withdraw(self) -> None:
        self._step(Step.WITHDRAW)

    def end(self) -> bool:
        """For good; False if it had ended already (ending is not repeated)."""
        if self.state is State.ENDED:
            return False
        self._step(Step.END)
        self.link, self.held, self._away = None, None, None
        return True

    # ---- delivery -------------------------------------------------------------------------
    def hold_back(self, room: str, event: ev.Event) -> None:
        """A room event that waits (`held` is not None): the fan-out sends the others."""
        if self.held is not None:
            self.held.append((room, event))

    def direct(self, event: ev.Event) -> None:
        """An event for them alone: held behind a reply or replay like room events, or,
        while they are away within their resume window, kept to follow their replay."""
        if self.link is not None:
            if self.held is None:
                _send(self.link, event)
            else:
                self.held.append(("", event))  # "": no room; a replay never drops these
        elif self.state in DETACHED:
            self._keep(event)

    def _keep(self, event: ev.Event) -> None:
        if self._away is None:
            self._away = deque(maxlen=AWAY_KEPT)
        self._away.append(event)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Live events wait until the block has sent its reply: with a shared broker they
        can arrive while a join is under way, before `welcome`/`joined`."""
        if self.held is not None:  # already held (a resume replays, then releases)
            yield
            return
        self.held = []
        try:
            yield
        finally:
            if self.state is not State.RESUMING:  # else a resume began meanwhile: its turn
                held, self.held = self.held or [], None
                for _, event in held:
                    if self.link is not None:
                        _send(self.link, event)

    # ---- what a replay needs --------------------------------------------------------------
    @property
    def replay_to_come(self) -> bool:
        """Not connected, or resuming: a replay will give them what they did not see."""
        return self.state is not State.CONNECTED

    def departing(self, room: str, first: int, last: int) -> None:
        """Taken out of a (private) room before their replay: it gives the room up to
        `last` (`replay_to_come` says whether to call this)."""
        self._departed[room] = (first, last)

    def replayed_up_to(self, room: str, newest: int) -> None:
        """Drop held live copies of room messages the replay has just sent."""
        if self.held:
            self.held = [
                (r, e)
                for r, e in self.held
                if not (r == room and isinstance(e, ev.Message) and e.id <= newest)
            ]

    def departed_given_back(self) -> None:
        """The replay reached their connection: those rooms are not given again."""
        self._departed = {}


def _send(link: Link, event: ev.Event) -> None:
    if link.open:
        link.sink.send(event)


# ---- resume: one connection continues a person ---------------------------------------------
async def take_over(chat: Chat, link: Link, old: Session) -> None:
    """`old` continues on `link` (from here its live events wait for the replay); a
    connection it still had is told why and closed; a withdrawn person enters their rooms
    again, shown to the others."""
    withdrawn = old.life.state is State.WITHDRAWN
    away = old.life.state is State.AWAY  # shown away in their rooms, here or on another node
    previous = old.life.attach(link)
    link.session = old
    if previous is not None:
        chat.send(previous, ev.Bye(reason="resumed_elsewhere"))
        previous.sink.close("resumed_elsewhere")
        await chat.close(previous, "resumed_elsewhere")
    if withdrawn:
        await chat.reenter(old)
    elif away:
        await chat.show_presence(old, "back")
    log.debug("peer resumed uid=%s", old.uid)


async def resume(chat: Chat, link: Link, old: Session, last: dict[str, int]) -> tuple[int, bool]:
    """The `resume` request: `link` becomes `old`'s (their own token again, or the fresh
    identity it had is retired), history after `last[room]` replays, then what waited.
    Returns (messages replayed, whether none was missing)."""
    try:
        if old is not link.session:
            await chat.adopt(link, old)
        else:  # their own token again, or held since connecting with it
            old.life.attach(link)
        return await _replay(chat, link, last)
    finally:
        old.life.replayed(link)


async def _replay(chat: Chat, link: Link, last: dict[str, int]) -> tuple[int, bool]:
    """Each listed room's retained messages after `last[room]`, in order; (how many, whether
    none was missing). Never older than when the person came into the room: no backlog for
    a newcomer. A private room they were taken out of while away replays up to its end.
    First, the `deleted` of each message they may have (up to `last[room]`) that was
    deleted meanwhile."""
    session = link.session
    life = session.life
    missed, complete = 0, True
    for room, after in last.items():
        if room in session.rooms:
            first, end = session.since.get(room, 0), None
        elif room in life.departed:
            first, end = life.departed[room]
        else:
            complete = False
            continue
        if after > first:  # what they have may have been deleted meanwhile
            for tombstone in await chat.broker.deletions(room, first):
                if tombstone.id <= after and chat.visible_to(tombstone, session.uid):
                    chat.send(link, tombstone)
        messages, whole = await chat.broker.history(room, max(after, first))
        if end is not None:
            messages = [m for m in messages if m.id <= end]
        for message in messages:
            if chat.visible_to(message, session.uid):  # shadow-muted: only its author sees it
                chat.send(link, message)
        missed += len(messages)
        complete = complete and whole
        if messages:
            life.replayed_up_to(room, messages[-1].id)
    if link.open:  # given back; a resume cut short gives them again next time
        life.departed_given_back()
    return missed, complete
