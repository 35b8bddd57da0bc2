"""One-to-one support: seekers wait in a queue, listeners say they are available, and a
match puts the two in a private `dm-` room (docs/one-to-one.md).

The rules this module keeps (all of one-to-one matching lives here):
- First come, first served; a seeker flagged for crisis (`session.crisis`) goes ahead of
  everyone not flagged, behind those flagged earlier.
- A seeker is never matched with a listener who ignored or reported them (nor with one they
  ignored), nor with themselves; a seeker or listener without a live connection is passed
  over (they keep their place) until they resume.
- Among the listeners who may take a seeker, the least busy one goes first, then the one
  who has been free the longest. A listener takes at most `config.listener_capacity` chats.
- A chat ends when either side leaves its room, quits, forgets, or is gone past the resume
  grace; the other side gets `ended` and leaves the room, and the listener is free again.

All state is in one `MatchState` per Chat (`chat.extensions["matching"]`); the queue is a
small class with an async, uid-keyed interface so a Redis version can replace it.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from dataclasses import dataclass

from . import events as ev
from . import requests as rq
from .chat import END_HOOKS, LEAVE_HOOKS, SAID_HOOKS, TICK_HOOKS, Chat, Refused, handles
from .moderation import moderation_of
from .names import name_key
from .rooms import PRIVATE_PREFIX, normalise_room
from .session import Link, Session

log = logging.getLogger("chatsupport.matching")

STAFF = ("listener", "mod")  # roles that may listen


class SeekerQueue:
    """Seekers waiting for a listener, in the order they will be served.

    Each ticket has a sort key (0 if flagged for crisis else 1, sequence number): flagged
    tickets come first in the order they were flagged, the rest in arrival order. In Redis
    this is one sorted set scored by the same key (e.g. `flag * 2**52 + sequence`).
    """

    def __init__(self) -> None:
        self._keys: dict[str, tuple[int, int]] = {}
        self._sequence = itertools.count()

    async def add(self, uid: str, crisis: bool = False) -> int:
        """Queue `uid` (a no-op if already queued); returns its position, from 1."""
        if uid not in self._keys:
            self._keys[uid] = (0 if crisis else 1, next(self._sequence))
        position = await self.position(uid)
        assert position is not None
        return position

    async def remove(self, uid: str) -> bool:
        return self._keys.pop(uid, None) is not None

    async def prioritise(self, uid: str) -> bool:
        """Move a queued, not yet flagged seeker behind the other flagged ones."""
        key = self._keys.get(uid)
        if key is None or key[0] == 0:
            return False
        self._keys[uid] = (0, next(self._sequence))
        return True

    async def order(self) -> list[str]:
        return sorted(self._keys, key=self._keys.__getitem__)

    async def position(self, uid: str) -> int | None:
        key = self._keys.get(uid)
        if key is None:
            return None
        return 1 + sum(1 for other in self._keys.values() if other < key)

    async def size(self) -> tuple[int, int]:
        """(waiting, of whom flagged for crisis)."""
        return len(self._keys), sum(1 for key in self._keys.values() if key[0] == 0)


@dataclass(slots=True)
class PrivateChat:
    room: str
    seeker: str  # uid
    listener: str  # uid


class MatchState:
    """Everything one-to-one matching keeps for one Chat."""

    def __init__(self) -> None:
        self.queue = SeekerQueue()
        self.available: dict[str, int] = {}  # listener uid -> sequence when last free
        self.chats: dict[str, PrivateChat] = {}  # room -> chat
        self.told: dict[str, int] = {}  # seeker uid -> last position sent to them
        # (reporter uid, reported uid): filled by the safety work through `mark_reported`.
        self.reported: set[tuple[str, str]] = set()
        self._sequence = itertools.count()

    def make_available(self, uid: str) -> None:
        if uid not in self.available:
            self.available[uid] = next(self._sequence)

    def mark_free(self, uid: str) -> None:
        """The listener just became free: behind the others who have waited longer."""
        if uid in self.available:
            self.available[uid] = next(self._sequence)

    def load(self, uid: str) -> int:
        return sum(1 for chat in self.chats.values() if chat.listener == uid)

    def chats_of(self, uid: str) -> list[PrivateChat]:
        return [c for c in self.chats.values() if uid in (c.seeker, c.listener)]

    def seeker_chat(self, uid: str) -> PrivateChat | None:
        return next((c for c in self.chats.values() if c.seeker == uid), None)

    def people(self) -> set[str]:
        """Everyone this state holds on to (for the housekeeping sweep)."""
        held = set(self.available) | set(self.told)
        for chat in self.chats.values():
            held.update((chat.seeker, chat.listener))
        return held


def state_of(chat: Chat) -> MatchState:
    return chat.extension("matching", MatchState, MatchState)


# ---- for the safety and moderation work ---------------------------------------------------
def mark_reported(chat: Chat, reporter: str, reported_uid: str) -> None:
    """`reporter` reported `reported_uid`: they are never matched one-to-one again."""
    state_of(chat).reported.add((reporter, reported_uid))


def reported(chat: Chat, listener: str, seeker: str) -> bool:
    return (listener, seeker) in state_of(chat).reported


def listeners_in(chat: Chat, room: str) -> list[str]:
    """Uids of the listener of a private room (empty for other rooms): a crisis alert from a
    private chat goes to them and to the moderators (and to no other listener)."""
    private = state_of(chat).chats.get(room)
    return [private.listener] if private else []


async def prioritise(chat: Chat, session: Session) -> None:
    """Call after setting `session.crisis`: a queued seeker moves ahead at once."""
    state = state_of(chat)
    if session.crisis and await state.queue.prioritise(session.uid):
        await _tell_positions(chat, state)


def on_probation(chat: Chat, session: Session) -> bool:
    """Newcomers (moderation's probation rule) do not start one-to-one chats yet."""
    return moderation_of(chat).on_probation(session, chat.clock())


# ---- requests ------------------------------------------------------------------------------
@handles(rq.Talk)
async def talk(chat: Chat, link: Link, request: rq.Request) -> None:
    state, session = state_of(chat), link.session
    if await state.queue.remove(session.uid):
        state.told.pop(session.uid, None)
        text = "you left the queue; /talk to join it again"
        chat.reply(link, ev.Notice(kind="talk", text=text), request)
        await _tell_positions(chat, state)
        return
    current = state.seeker_chat(session.uid)
    if current is not None:
        raise Refused("bad_request", f"you are already talking with a listener in #{current.room}")
    if on_probation(chat, session):
        left = chat.config.probation_seconds - (chat.clock() - session.created)
        raise Refused(
            "forbidden",
            f"one-to-one chats open to newcomers after a short wait ({math.ceil(left / 60)} "
            "min left); #lobby is here meanwhile, and /resources lists help lines",
        )
    position = await state.queue.add(session.uid, session.crisis)
    state.told[session.uid] = position
    chat.reply(link, ev.Queue(position=position), request)
    chat.count("talk_requests")
    await pump(chat)


@handles(rq.Listen)
async def listen(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Listen)
    state, session = state_of(chat), link.session
    if session.role not in STAFF:
        raise Refused("forbidden", "only signed-in listeners take one-to-one chats")
    if request.on:
        state.make_available(session.uid)
        waiting, _ = await state.queue.size()
        capacity = max(1, chat.config.listener_capacity)
        text = f"you are available for one-to-one chats (up to {capacity} at once); "
        text += f"{waiting} waiting"
    else:
        state.available.pop(session.uid, None)
        active = state.load(session.uid)
        text = "you will not be offered new chats"
        text += f"; your {active} current chat(s) go on" if active else ""
    chat.reply(link, ev.Notice(kind="listen", text=text), request)
    if request.on:
        await pump(chat)


@handles(rq.Handoff)
async def handoff(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Handoff)
    state, session = state_of(chat), link.session
    room = normalise_room(request.room) if request.room else session.current or ""
    private = state.chats.get(room)
    seeker = chat.sessions.get(private.seeker) if private else None
    if private is None or seeker is None or private.listener != session.uid:
        raise Refused("bad_request", "/handoff works in a one-to-one chat you are listening in")
    target = _handoff_target(chat, state, seeker, session, request)
    await _hand_over(chat, private, seeker, target)
    await chat.exit(session, room)
    chat.reply(link, ev.Ended(room=room, reason="handed_over"), request)
    state.mark_free(session.uid)
    chat.count("handoffs")
    await pump(chat)


@handles(rq.QueueStatus)
async def queue_status(chat: Chat, link: Link, request: rq.Request) -> None:
    """Moderators see numbers only: never who waits, who talks with whom, or what is said."""
    if link.session.role != "mod":
        raise Refused("forbidden", "/queue is for mods")
    state = state_of(chat)
    waiting, flagged = await state.queue.size()
    capacity = max(1, chat.config.listener_capacity)
    free = sum(1 for uid in state.available if state.load(uid) < capacity)
    text = (
        f"{waiting} waiting for a listener ({flagged} flagged for crisis); "
        f"{len(state.chats)} one-to-one chats active; {free} listeners free"
    )
    chat.reply(link, ev.Notice(kind="queue", text=text), request)


# ---- matching ------------------------------------------------------------------------------
async def pump(chat: Chat) -> None:
    """Match while a waiting seeker and a free listener fit together; then tell positions."""
    state = state_of(chat)
    while (pair := await _next_pair(chat, state)) is not None:
        seeker, listener = pair
        if await state.queue.remove(seeker.uid):  # still waiting (another pump may have won)
            await _match(chat, state, seeker, listener)
    await _tell_positions(chat, state)


async def _next_pair(chat: Chat, state: MatchState) -> tuple[Session, Session] | None:
    for uid in await state.queue.order():
        seeker = chat.sessions.get(uid)
        if seeker is None or seeker.link is None:
            continue  # away for now: keeps their place until they resume or are gone
        listener = _best_listener(chat, state, seeker)
        if listener is not None:
            return seeker, listener
    return None


def _best_listener(
    chat: Chat, state: MatchState, seeker: Session, exclude: str | None = None
) -> Session | None:
    """The least busy free listener who may take `seeker`, longest free first."""
    best: tuple[tuple[int, int], Session] | None = None
    for uid, since in state.available.items():
        listener = chat.sessions.get(uid)
        if listener is None or uid == exclude or not _may_take(chat, state, listener, seeker):
            continue
        key = (state.load(uid), since)
        if best is None or key < best[0]:
            best = (key, listener)
    return best[1] if best else None


def _may_take(chat: Chat, state: MatchState, listener: Session, seeker: Session) -> bool:
    return (
        listener.link is not None
        and listener.uid != seeker.uid
        and state.load(listener.uid) < max(1, chat.config.listener_capacity)
        and seeker.uid not in listener.ignored
        and listener.uid not in seeker.ignored
        and (listener.uid, seeker.uid) not in state.reported
    )


async def _match(chat: Chat, state: MatchState, seeker: Session, listener: Session) -> None:
    room = PRIVATE_PREFIX + secrets.token_hex(8)
    state.told.pop(seeker.uid, None)
    state.chats[room] = PrivateChat(room, seeker.uid, listener.uid)
    await chat.enter(listener, room, announce=False)
    await chat.enter(seeker, room, announce=False)  # now a text seeker's lines go here
    chat.direct(seeker, ev.Matched(room=room, partner=listener.member()))
    chat.direct(listener, ev.Matched(room=room, partner=seeker.member()))
    chat.count("matches")
    log.info("one-to-one chat started room=%s", room)


async def _tell_positions(chat: Chat, state: MatchState) -> None:
    """Send `queue {position}` to each waiting seeker whose position changed."""
    for position, uid in enumerate(await state.queue.order(), 1):
        if state.told.get(uid) != position:
            state.told[uid] = position
            session = chat.sessions.get(uid)
            if session is not None:
                chat.direct(session, ev.Queue(position=position))


# ---- handoff -------------------------------------------------------------------------------
def _handoff_target(
    chat: Chat, state: MatchState, seeker: Session, old: Session, request: rq.Handoff
) -> Session:
    if not (request.uid or request.name):
        target = _best_listener(chat, state, seeker, exclude=old.uid)
        if target is None:
            raise Refused("unavailable", "no other listener is free to take this chat now")
        return target
    key = name_key(request.name or "")
    for uid in state.available:
        listener = chat.sessions.get(uid)
        if listener is None or uid == old.uid:
            continue
        named = uid == request.uid or listener.name_key == key
        if named and _may_take(chat, state, listener, seeker):
            return listener
    raise Refused("unavailable", f"{request.name or request.uid} is not free to take this chat")


async def _hand_over(chat: Chat, private: PrivateChat, seeker: Session, new: Session) -> None:
    """The new listener joins and reads the conversation so far; the seeker is told.

    Entering before reading history means a message can arrive twice (live and in the
    history) on a distributed broker, but never be missed; clients drop repeated ids.
    """
    old = chat.sessions.get(private.listener)
    room, private.listener = private.room, new.uid
    await chat.enter(new, room)
    history, _ = await chat.broker.history(room, 0)
    chat.direct(new, ev.Matched(room=room, partner=seeker.member()))
    text = f"handed over by {old.name if old else 'a listener'}; the conversation so far:"
    chat.direct(new, ev.Notice(kind="handoff", text=text, name=seeker.name))
    for message in history:  # `new` is connected (`_may_take`): never kept while away
        chat.direct(new, message)
    text = f"{new.name} is taking over this chat and can read it so far; no need to start again"
    chat.direct(seeker, ev.Notice(kind="handoff", text=text, name=new.name))
    log.info("one-to-one chat handed over room=%s", room)


# ---- endings -------------------------------------------------------------------------------
async def _end(chat: Chat, state: MatchState, private: PrivateChat, by: str, reason: str) -> None:
    """End a chat because `by` left or is gone: the other side is told and leaves too."""
    state.chats.pop(private.room, None)
    both = [s for uid in (private.seeker, private.listener) if (s := chat.sessions.get(uid))]
    for session in both:  # out of the room first: nothing said after `ended` is accepted
        await _drop_room(chat, session, private.room)
    for session in both:
        if session.uid != by:
            chat.direct(session, ev.Ended(room=private.room, reason=reason))
    state.mark_free(private.listener)
    chat.count("chats_ended")
    log.info("one-to-one chat ended room=%s reason=%s", private.room, reason)


async def _drop_room(chat: Chat, session: Session, room: str) -> None:
    if room not in session.rooms:
        return
    if session.link is None or session.replay is not None:
        # Away or resuming: their resume still replays what was said here until the end.
        first = session.since.get(room, 0)
        session.departed[room] = (first, await chat.broker.last_id(room))
    if session.present:
        await chat.exit(session, room)
        return
    # Withdrawn after the grace period: no longer a member, but the room is still in the
    # list resume would re-enter. A finished private chat must not come back.
    session.rooms.remove(room)
    session.since.pop(room, None)
    if session.current == room:
        session.current = session.rooms[-1] if session.rooms else None


async def _gone(chat: Chat, uid: str) -> None:
    """Quit, forgot, or away past the resume grace: out of the queue, chats ended."""
    state = state_of(chat)
    state.available.pop(uid, None)
    state.told.pop(uid, None)
    await state.queue.remove(uid)
    for private in state.chats_of(uid):
        await _end(chat, state, private, uid, "partner_disconnected")
    await pump(chat)


# ---- hooks ---------------------------------------------------------------------------------
async def _left(chat: Chat, session: Session, room: str) -> None:
    state = state_of(chat)
    private = state.chats.get(room)
    if private is not None and session.uid in (private.seeker, private.listener):
        await _end(chat, state, private, session.uid, "partner_left")
        await pump(chat)


async def _ended(chat: Chat, session: Session) -> None:
    state = state_of(chat)
    if session.uid in state.people() or await state.queue.position(session.uid) is not None:
        await _gone(chat, session.uid)


async def _tick(chat: Chat) -> None:
    """Withdrawn sessions (resume grace over) are gone; resumed ones may be matched now."""
    state = state_of(chat)
    for uid in state.people() | set(await state.queue.order()):
        session = chat.sessions.get(uid)
        if session is None or not session.present:
            await _gone(chat, uid)
    await pump(chat)


async def _said(chat: Chat, session: Session, message: ev.Message) -> None:
    await prioritise(chat, session)


LEAVE_HOOKS.append(_left)
END_HOOKS.append(_ended)
TICK_HOOKS.append(_tick)
SAID_HOOKS.append(_said)
