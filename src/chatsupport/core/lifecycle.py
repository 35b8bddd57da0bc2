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
- A replay (`Replay`) goes at the pace the connection reads: it writes while the sink is
  not `backlogged` and leaves the rest to `when_drained`, reading each room's history in
  pages; the core never awaits the peer. What it holds meanwhile is bounded
  (`resume_held_limit`): past it the replay is cut (`resumed {complete: false, reason:
  "overtaken"}`), the room events held are dropped (history has them) and live delivery
  goes on.
- A private room a person is taken out of while not connected, or while resuming, is
  noted in `departed` (room -> first, last id) so their next replay gives it up to its
  end; a replay that reaches the connection forgets them.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import events as ev
from .ports import BrokerUnavailable
from .vocabulary import ReplayCut

if TYPE_CHECKING:
    from .chat import Chat
    from .session import Link, Session

log = logging.getLogger("chatsupport.core")

AWAY_KEPT = 50  # direct events kept for a person who is away, to follow their resume
REPLAY_PAGE = 50  # messages read from a room's history at once by a replay


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


_NONE_DEPARTED: Mapping[str, tuple[int, int]] = MappingProxyType({})
Held = list[tuple[str, ev.Event]]  # (room, event); room "" for a direct event

# The room batches of this process's chats (`Chat.seal`, registered while a transport batches):
# a change of someone's connection or of what is held for them comes after what their rooms
# said before it, so every unsealed batch is handed out first (core/batch.py).
SEALERS: list[Callable[[], object]] = []


def _settle() -> None:
    for seal in SEALERS:
        seal()


class Life:
    """One session's state, its connection, and what waits for it.

    `state`, `link` and `held` are plain attributes so that the fan-out reads them at the
    cost of a slot; only this module writes them (tests/core/test_lifecycle.py checks)."""

    __slots__ = ("_away", "_departed", "_since_detached", "held", "link", "replay", "state")

    def __init__(self) -> None:
        self.state = State.NEW
        self.link: Link | None = None  # the open connection (CONNECTED, RESUMING)
        self.held: Held | None = None  # live events held back (a reply, a replay)
        self.replay: Replay | None = None  # the resume's replay under way on `link`
        self._since_detached: float | None = None  # clock time of the detach
        self._away: deque[ev.Event] | None = None  # direct events while not connected
        self._departed: dict[str, tuple[int, int]] | None = None  # made when needed (rare)

    def __repr__(self) -> str:
        return f"<Life {self.state.value}>"

    # ---- questions ------------------------------------------------------------------------
    @property
    def present(self) -> bool:
        """A member of their rooms: shown to others (false once withdrawn or ended)."""
        return self.state in PRESENT

    @property
    def departed(self) -> Mapping[str, tuple[int, int]]:
        return MappingProxyType(self._departed or _NONE_DEPARTED)

    def idle(self, now: float) -> float | None:
        """Seconds since the connection closed, while resumable without one; else None."""
        if self.state not in DETACHED or self._since_detached is None:
            return None
        return now - self._since_detached

    # ---- transitions ----------------------------------------------------------------------
    def _step(self, step: Step) -> None:
        """The only place the state changes."""
        _settle()
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
        self._departed = dict(departed) or None

    def attach(self, link: Link) -> Link | None:
        """`link` resumes the session; live events wait for the replay. Returns the other
        connection the session still had, for the caller to close."""
        previous = self.link if self.link is not link else None
        self._step(Step.ATTACH)
        self.link, self._since_detached = link, None
        self.replay = None  # one under way on the other connection is over
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
        self.replay = None
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
        self.link, self._since_detached, self.replay = None, now, None
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
        self.link, self.held, self._away, self.replay = None, None, None, None
        return True

    # ---- delivery -------------------------------------------------------------------------
    def hold_back(self, room: str, event: ev.Event) -> None:
        """A room event that waits (`held` is not None): the fan-out sends the others."""
        if self.held is not None:
            self._hold(room, event)

    def direct(self, event: ev.Event) -> None:
        """An event for them alone: held behind a reply or replay like room events, or,
        while they are away within their resume window, kept to follow their replay."""
        if self.link is not None:
            if self.held is None:
                _send(self.link, event)
            else:
                self._hold("", event)  # "": no room; a replay never drops these
        elif self.state in DETACHED:
            self._keep(event)

    def _hold(self, room: str, event: ev.Event) -> None:
        held = self.held
        assert held is not None
        held.append((room, event))
        replay = self.replay
        if replay is not None and len(held) > replay.hold_limit:
            replay.overtaken()  # no longer held from here: live delivery goes on

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
        _settle()
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
        if self._departed is None:
            self._departed = {}
        self._departed[room] = (first, last)

    def replayed_up_to(self, room: str, newest: int) -> None:
        """Drop held live copies of room messages the replay has just sent."""
        _settle()
        if self.held:
            self.held = [
                (r, e)
                for r, e in self.held
                if not (r == room and isinstance(e, ev.Message) and e.id <= newest)
            ]

    def departed_given_back(self) -> None:
        """The replay reached their connection: those rooms are not given again."""
        self._departed = None

    def begin(self, replay: Replay) -> None:
        """`replay` gives history to their connection (resuming): the one held events
        wait for, and that is cut if too many come meanwhile."""
        if self.link is replay.link and self.state is State.RESUMING:
            self.replay = replay

    def take_kept(self) -> list[ev.Event]:
        """What was kept while they were away, for the replay to send (once)."""
        kept, self._away = self._away or (), None
        return list(kept)

    def take_held(self) -> Held:
        """The live events held so far, for the replay to send; later ones are still held."""
        _settle()
        held = self.held or []
        if self.held:
            self.held = []
        return held


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


async def resume(
    chat: Chat, link: Link, old: Session, last: dict[str, int], ref: str | None
) -> None:
    """The `resume` request: `link` becomes `old`'s (their own token again, or the fresh
    identity it had is retired), then history after `last[room]` replays, at the pace the
    connection reads, then what waited, then `resumed` (with `ref`)."""
    try:
        if old is not link.session:
            await chat.adopt(link, old)
        else:  # their own token again, or held since connecting with it
            old.life.attach(link)
    except BaseException:
        old.life.replayed(link)  # not replayed: what was held goes out as it is
        raise
    replay = Replay(chat, link, last, ref)
    old.life.begin(replay)
    await replay.run()


REPLAY_PER_TOKEN = 500  # messages a resume replays per token of the sender's budget


class Replay:
    """One resume's replay to one connection, paced by it.

    `run` sends while the sink is not `backlogged`, then hands itself to `when_drained`
    (the transport runs it again once the peer has read enough), so a backlog of any size
    never passes the outbox limit and the core never waits on a peer. In order: each
    listed room's retained messages after `last[room]`, read a page at a time, never older
    than when the person came into the room (a private room they were taken out of while
    away replays up to its end), each preceded by the `deleted` of the messages they may
    have (up to `last[room]`) that were deleted meanwhile; then what was kept while they
    were away; then the live events held meanwhile; then `resumed`.

    A room's replay ends at its newest id when its backlog was found to be long: what comes
    later is live, held and released after (so a busy room is never chased). Held events
    are bounded (`hold_limit`): past it, `overtaken`."""

    __slots__ = (
        "_after",
        "_end",
        "_more",
        "_page",
        "_releasing",
        "_room",
        "_rooms",
        "chat",
        "complete",
        "hold_limit",
        "link",
        "missed",
        "ref",
    )

    def __init__(self, chat: Chat, link: Link, last: dict[str, int], ref: str | None) -> None:
        self.chat, self.link, self.ref = chat, link, ref
        self.hold_limit = chat.config.resume_held_limit
        self.missed, self.complete = 0, True
        self._rooms = deque(last.items())  # rooms still to replay, with the id they have
        self._room = ""  # the room being replayed
        self._after = 0  # the newest id of it read so far
        self._end: int | None = None  # where its replay ends (None: where history does)
        self._more = False  # a page of it may follow
        self._page: deque[ev.Event] = deque()  # read, not sent yet
        self._releasing: deque[tuple[str, ev.Event]] | None = None  # once history is done

    @property
    def current(self) -> bool:
        """Still what this connection is given (not closed, cut, taken over or ended)."""
        life = self.link.session.life
        return self.link.open and life.replay is self and life.link is self.link

    async def run(self) -> None:
        """Send what the connection takes now; the rest once it has drained."""
        link, send = self.link, self.chat.send
        sink, page = link.sink, self._page
        try:
            while self.current:
                while page and not sink.backlogged:  # what was read: nothing awaited here
                    _settle()  # live events of this turn first: they may cut the replay
                    if not page:
                        break
                    event = page.popleft()
                    if type(event) is ev.Message:
                        self.missed += 1  # counted as sent: a replay cut short says how far
                    send(link, event)
                if sink.backlogged:
                    sink.when_drained(self.run)
                    return
                if self._more:  # the next page of this room
                    await self._read_page()
                elif self._rooms:
                    await self._start_room(*self._rooms.popleft())
                elif (released := self._released()) is not None:
                    send(link, released)
                else:
                    self._finish()
                    return
        except BrokerUnavailable:
            if self.current:
                self._cut("unavailable")

    async def _start_room(self, room: str, after: int) -> None:
        session, chat = self.link.session, self.chat
        life = session.life
        if room in session.rooms:
            first, end = session.since.get(room, 0), None
        elif room in life.departed:
            first, end = life.departed[room]
        else:  # not theirs (any longer): nothing from it
            self.complete = False
            return
        self._room, self._after, self._end, self._more = room, max(after, first), end, True
        if after > first:  # what they have may have been deleted meanwhile
            for tombstone in await chat.broker.deletions(room, first):
                if tombstone.id <= after and chat.visible_to(tombstone, session.uid):
                    self._page.append(tombstone)

    async def _read_page(self) -> None:
        chat, room, uid = self.chat, self._room, self.link.session.uid
        messages, whole = await chat.broker.history(room, self._after, REPLAY_PAGE)
        self.complete = self.complete and whole
        full = len(messages) == REPLAY_PAGE
        if full and self._end is None:  # a long backlog: up to here; what follows is live
            self._end = await chat.broker.last_id(room)
        if self._end is not None:
            messages = [m for m in messages if m.id <= self._end]
        self._more = full and bool(messages) and (self._end is None or messages[-1].id < self._end)
        if not messages:
            return
        self._after = messages[-1].id
        visible = [m for m in messages if chat.visible_to(m, uid)]
        self.missed += len(messages) - len(visible)  # shadow-muted: counted all the same
        self._page.extend(visible)
        self.link.session.life.replayed_up_to(room, self._after)  # their held copies go

    def _released(self) -> ev.Event | None:
        """History is done: what was kept while away, then what is held, as it comes."""
        life = self.link.session.life
        if self._releasing is None:
            life.departed_given_back()  # reached the connection: not given again
            self._releasing = deque(("", event) for event in life.take_kept())
        if not self._releasing:
            self._releasing.extend(life.take_held())
        return self._releasing.popleft()[1] if self._releasing else None

    def _finish(self, reason: ReplayCut | None = None) -> None:
        self.link.session.life.replayed(self.link)
        done = ev.Resumed(missed=self.missed, complete=self.complete, reason=reason, ref=self.ref)
        self.chat.send(self.link, done)
        # A resume costs by its size, like every read (a loop of resumes is not free).
        self.chat.charge(self.link, self.missed / REPLAY_PER_TOKEN)

    def _cut(self, reason: ReplayCut) -> None:
        """End now, incomplete: room events held are dropped (history keeps them; the client
        resumes again or reloads), events for them alone are given, then `resumed`."""
        life = self.link.session.life
        kept = life.take_kept() if self._releasing is None else []
        waiting = [*(self._releasing or ()), *life.take_held()]
        for event in [*kept, *(event for room, event in waiting if not room)]:
            self.chat.send(self.link, event)
        self.complete = False
        self._page.clear()
        self._finish(reason)  # from here, live delivery

    def overtaken(self) -> None:
        """More live events came than are held for one person: stop holding."""
        if self.current:
            log.info("replay overtaken uid=%s", self.link.session.uid)
            self.chat.count("resumes_overtaken")
            self._cut("overtaken")
