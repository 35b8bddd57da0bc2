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

Matching is cluster-wide: the queue, listeners' free places, chats and what a node needs
to know of a person held elsewhere are in the broker (match_state.py); any node may decide
a match, taking the seeker and the listener's place with an atomic `dequeue`, and each side
enters the private room on the node that holds them (a `matched` through `broker.direct`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass

from . import events as ev
from . import requests as rq
from .chat import Chat, Refused
from .feature import Feature, handles
from .match_state import (
    CHATS,
    FLAG_TTL,
    LISTENING,
    MAX_MATCHES,
    QUEUE_TTL,
    RENEW_EVERY,
    SEEKERS,
    SLOTS,
    WHO,
    MatchState,
    PrivateChat,
    Profile,
    capacity,
    loads_of,
    offer_slots,
    person,
    profile_of,
    profiles_of,
    shared_chats,
    slot_of,
    withdraw_slots,
    write_profile,
)
from .names import name_key
from .rooms import PRIVATE_PREFIX, is_private, normalise_room
from .session import Link, Session

log = logging.getLogger("chatsupport.matching")


class Matching(Feature):
    """One-to-one support: the requests, and what this node keeps (the shared part is in
    the broker). After safety in the feature list: `after_say` reads the crisis flag."""

    def __init__(self) -> None:
        self.state = MatchState()

    # ---- for other features ------------------------------------------------------------------
    def on_report(self, reporter: str, reported: str) -> None:
        """`reporter` reported `reported`: they are never matched one-to-one again."""
        self.state.reported.add((reporter, reported))

    def reported(self, listener: str, seeker: str) -> bool:
        return (listener, seeker) in self.state.reported

    def listeners_in(self, room: str) -> list[str]:
        """Uids of the listener of a private room (empty for other rooms): a crisis alert
        from a private chat goes to them and to the moderators (and to no other listener)."""
        private = self.state.chats.get(room)
        return [private.listener] if private else []

    # ---- requests ------------------------------------------------------------------------------
    @handles(rq.Talk)
    async def talk(self, link: Link, request: rq.Talk) -> None:
        chat, state, session = self.chat, self.state, link.session
        if await chat.broker.dequeue(SEEKERS, session.uid) is not None:
            _unqueued(state, session.uid)
            text = "you left the queue; /talk to join it again"
            chat.reply(link, ev.Notice(kind="talk", text=text), request)
            await _tell_positions(chat, state)
            return
        current = state.seeker_chat(session.uid)
        if current is not None:
            raise Refused(
                "bad_request", f"you are already talking with a listener in #{current.room}"
            )
        # No probation here: a newcomer may need a listener from their first second
        # (CONTRACT §8). Probation only shrinks their budget in group rooms (flood.py).
        await write_profile(chat, state, session)  # before the queue: others match from it
        priority = 0 if session.crisis else 1
        position = await chat.broker.enqueue(SEEKERS, session.uid, QUEUE_TTL, priority)
        state.waiting.add(session.uid)
        if session.crisis:
            state.flagged.add(session.uid)
        state.told[session.uid] = position
        chat.reply(link, ev.Queue(position=position), request)
        chat.count("talk_requests")
        await pump(chat, state)

    @handles(rq.Listen, role="listener")
    async def listen(self, link: Link, request: rq.Listen) -> None:
        chat, state, session = self.chat, self.state, link.session
        if request.on:
            await write_profile(chat, state, session)
            await chat.broker.set_flag(LISTENING, session.uid, FLAG_TTL)
            state.listening.add(session.uid)
            await offer_slots(chat, session.uid)
            waiting = len(await chat.broker.queued(SEEKERS))
            text = f"you are available for one-to-one chats (up to {capacity(chat)} at once); "
            text += f"{waiting} waiting"
        else:
            await _stop_listening(chat, state, session.uid)
            active = loads_of(await shared_chats(chat)).get(session.uid, 0)
            text = "you will not be offered new chats"
            text += f"; your {active} current chat(s) go on" if active else ""
        chat.reply(link, ev.Notice(kind="listen", text=text), request)
        if request.on:
            await pump(chat, state)

    @handles(rq.Handoff, role="listener")
    async def handoff(self, link: Link, request: rq.Handoff) -> None:
        chat, state, session = self.chat, self.state, link.session
        room = normalise_room(request.room) if request.room else session.current or ""
        private = state.chats.get(room)
        profiles = await profiles_of(chat)
        seeker = person(chat, profiles, private.seeker) if private else None
        if private is None or seeker is None or private.listener != session.uid:
            raise Refused("bad_request", "/handoff works in a one-to-one chat you are listening in")
        target = await _handoff_target(chat, state, profiles, seeker, session, request)
        await _hand_over(chat, private, seeker, session, target)
        if private.seeker not in chat.sessions and private.listener not in chat.sessions:
            state.chats.pop(room, None)  # nobody in it is here any more
        await chat.exit(session, room)
        chat.reply(link, ev.Ended(room=room, reason="handed_over"), request)
        await offer_slots(chat, session.uid)  # free again: behind those free longer
        chat.count("handoffs")
        await pump(chat, state)

    @handles(rq.QueueStatus, role="mod")
    async def queue_status(self, link: Link, request: rq.QueueStatus) -> None:
        """Moderators see numbers only: never who waits, who talks with whom, or what is said."""
        chat = self.chat
        waiting = await chat.broker.queued(SEEKERS)
        profiles = await profiles_of(chat)
        flagged = sum(1 for uid in waiting if (p := person(chat, profiles, uid)) and p.crisis)
        free = {slot_of(item)[0] for item in await chat.broker.queued(SLOTS)}
        text = (
            f"{len(waiting)} waiting for a listener ({flagged} flagged for crisis); "
            f"{len(await shared_chats(chat))} one-to-one chats active; {len(free)} listeners free"
        )
        chat.reply(link, ev.Notice(kind="queue", text=text), request)

    # ---- hooks ---------------------------------------------------------------------------------
    async def after_say(self, session: Session, message: ev.Message) -> None:
        await prioritise(self.chat, self.state, session)  # safety set the flag just before

    async def on_leave(self, session: Session, room: str) -> None:
        chat, state = self.chat, self.state
        private = state.chats.get(room)
        if private is None and is_private(room):  # resumed here from another node just now
            private = (await shared_chats(chat)).get(room)
        if private is not None and session.uid in (private.seeker, private.listener):
            await _end(chat, state, private, session.uid, "partner_left")
            await pump(chat, state)

    async def on_end(self, session: Session) -> None:
        state = self.state  # they are no longer in chat.sessions
        if state.chats_of(session.uid) or session.uid in state.people(self.chat.sessions):
            await _gone(self.chat, state, session.uid)

    async def on_tick(self) -> None:
        """Withdrawn sessions (resume grace over) are gone; resumed ones may be matched now."""
        chat, state = self.chat, self.state
        for uid in state.people(chat.sessions):
            session = chat.sessions.get(uid)
            if session is None:
                _forget(state, uid)
            elif not session.present:
                await _gone(chat, state, uid)
        if chat.clock() - state.renewed >= RENEW_EVERY:
            state.renewed = chat.clock()
            await _renew(chat, state)
        else:
            await _refresh_profiles(chat, state)
        await pump(chat, state)

    def on_direct(self, session: Session, event: ev.Event) -> Awaitable[None] | None:
        """Events another node sent about a match: act on them here before they are shown."""
        if isinstance(event, ev.Matched) and event.room not in session.rooms:
            return self._matched_elsewhere(session, event)
        if isinstance(event, ev.Ended):
            return self._ended_elsewhere(session, event)
        if isinstance(event, ev.Queue):
            return self._queued_elsewhere(session, event)
        if isinstance(event, ev.Notice) and event.kind == "handoff":
            return self._handed_over_elsewhere(session, event)
        return None

    async def _matched_elsewhere(self, session: Session, event: ev.Matched) -> None:
        chat = self.chat
        pair = await chat.broker.get_flag(CHATS, event.room)
        seeker, _, listener = (pair or "").partition(" ")
        if session.uid not in (seeker, listener):
            return  # ended meanwhile (its `ended` follows) or not theirs: nothing to enter
        await _enter(chat, self.state, session, PrivateChat(event.room, seeker, listener))
        chat.direct(session, event)

    async def _ended_elsewhere(self, session: Session, event: ev.Ended) -> None:
        self.state.chats.pop(event.room, None)
        await _drop_room(self.chat, session, event.room)
        self.chat.direct(session, event)

    async def _handed_over_elsewhere(self, session: Session, event: ev.Notice) -> None:
        """A seeker whose chat another node handed over: crisis alerts go to the new listener."""
        private = self.state.seeker_chat(session.uid)
        if private is not None:
            pair = await self.chat.broker.get_flag(CHATS, private.room)
            seeker, _, listener = (pair or "").partition(" ")
            if seeker == session.uid and listener:
                private.listener = listener
        self.chat.direct(session, event)

    async def _queued_elsewhere(self, session: Session, event: ev.Queue) -> None:
        """Another node saw the queue move. Its word may be stale by now (a match here
        since), so the position told is read afresh."""
        chat, state = self.chat, self.state
        if session.uid not in state.waiting:  # not after they left it or were matched
            return
        order = await chat.broker.queued(SEEKERS)
        if session.uid in order:
            _tell(chat, state, session, order.index(session.uid) + 1)


# ---- what the feature does, over this node's state and the broker's ----------------------


async def prioritise(chat: Chat, state: MatchState, session: Session) -> None:
    """After `session.crisis` is set: a queued seeker moves ahead at once."""
    uid = session.uid
    if not session.crisis or uid not in state.waiting or uid in state.flagged:
        return
    if await chat.broker.reprioritise(SEEKERS, uid, 0):
        state.flagged.add(uid)
        await write_profile(chat, state, session)
        await _tell_positions(chat, state)


def _unqueued(state: MatchState, uid: str) -> None:
    state.waiting.discard(uid)
    state.flagged.discard(uid)
    state.told.pop(uid, None)


async def _stop_listening(chat: Chat, state: MatchState, uid: str) -> None:
    state.listening.discard(uid)
    await chat.broker.clear_flag(LISTENING, uid)
    await withdraw_slots(chat, uid)


# ---- matching ------------------------------------------------------------------------------
@dataclass(slots=True)
class _Pair:
    seeker: Profile
    listener: Profile
    slot: str  # the listener's place taken from SLOTS


async def pump(chat: Chat, state: MatchState) -> None:
    """Match while a waiting seeker and a free listener fit together; then tell positions.

    Any node may decide a match: it takes the listener's place, then the seeker, each with
    an atomic `dequeue`, so two nodes never take the same seeker or the same place."""
    for _ in range(MAX_MATCHES):
        pair = await _next_pair(chat, state)
        if pair is None:
            break
        if await _take(chat, pair):
            await _match(chat, state, pair)
    await _tell_positions(chat, state)


async def _take(chat: Chat, pair: _Pair) -> bool:
    broker = chat.broker
    if await broker.dequeue(SLOTS, pair.slot) is None:
        return False  # another node took this place meanwhile
    if await broker.dequeue(SEEKERS, pair.seeker.member.uid) is None:
        _, k = slot_of(pair.slot)  # the seeker went (or was matched elsewhere): give it back
        await broker.enqueue(SLOTS, pair.slot, QUEUE_TTL, priority=k)
        return False
    return True


async def _next_pair(chat: Chat, state: MatchState) -> _Pair | None:
    seekers = await chat.broker.queued(SEEKERS)
    slots = await chat.broker.queued(SLOTS) if seekers else []
    if not slots:
        return None
    profiles = await profiles_of(chat)
    loads = loads_of(await shared_chats(chat))
    for uid in seekers:
        seeker = person(chat, profiles, uid)
        if seeker is None:  # their node is gone and never said so: drop the stale entry
            await chat.broker.dequeue(SEEKERS, uid)
            continue
        if seeker.away:
            continue  # away for now: keeps their place until they resume or are gone
        found = await _best_slot(chat, state, profiles, loads, slots, seeker)
        if found is not None:
            return _Pair(seeker, found[1], found[0])
    return None


async def _best_slot(
    chat: Chat,
    state: MatchState,
    profiles: dict[str, Profile],
    loads: dict[str, int],
    slots: list[str],
    seeker: Profile,
    exclude: str | None = None,
) -> tuple[str, Profile] | None:
    """The first place (least busy, then free longest) of a listener who may take `seeker`."""
    for item in slots:
        uid, _ = slot_of(item)
        listener = person(chat, profiles, uid)
        if listener is None:
            await chat.broker.dequeue(SLOTS, item)  # stale: their node is gone
            continue
        if uid != exclude and _may_take(chat, state, loads, listener, seeker):
            return item, listener
    return None


def _may_take(
    chat: Chat, state: MatchState, loads: dict[str, int], listener: Profile, seeker: Profile
) -> bool:
    listener_uid, seeker_uid = listener.member.uid, seeker.member.uid
    return (
        not listener.away
        and listener_uid != seeker_uid
        and loads.get(listener_uid, 0) < capacity(chat)
        and seeker_uid not in listener.ignored
        and listener_uid not in seeker.ignored
        and (listener_uid, seeker_uid) not in state.reported
    )


async def _match(chat: Chat, state: MatchState, pair: _Pair) -> None:
    """Record the chat, then each side enters the room on the node that holds them."""
    room = PRIVATE_PREFIX + secrets.token_hex(8)
    private = PrivateChat(room, pair.seeker.member.uid, pair.listener.member.uid)
    await chat.broker.set_flag(CHATS, room, FLAG_TTL, f"{private.seeker} {private.listener}")
    sides = ((private.listener, pair.seeker.member), (private.seeker, pair.listener.member))
    local = [(s, partner) for uid, partner in sides if (s := chat.sessions.get(uid))]
    for session, _ in local:
        await _enter(chat, state, session, private)
    for session, partner in reversed(local):  # the seeker hears first, as on one node
        chat.direct(session, ev.Matched(room=room, partner=partner))
    for uid, partner in sides:
        if uid not in chat.sessions:
            await chat.broker.direct(uid, ev.Matched(room=room, partner=partner))
    chat.count("matches")
    log.info("one-to-one chat started room=%s", room)


async def _enter(chat: Chat, state: MatchState, session: Session, private: PrivateChat) -> None:
    state.chats[private.room] = private
    if session.uid == private.seeker:
        _unqueued(state, session.uid)
    await chat.enter(session, private.room, announce=False)  # a text peer's lines go there


async def _tell_positions(chat: Chat, state: MatchState) -> None:
    """Send `queue {position}` to each waiting seeker whose position changed: directly to
    those here, through the broker to the others (their node drops a repeat)."""
    order = await chat.broker.queued(SEEKERS)
    if order == state.order:
        return
    before = {uid: position for position, uid in enumerate(state.order, 1)}
    state.order = order
    for position, uid in enumerate(order, 1):
        session = chat.sessions.get(uid)
        if session is not None:
            _tell(chat, state, session, position)
        elif before.get(uid) != position:
            await chat.broker.direct(uid, ev.Queue(position=position))


def _tell(chat: Chat, state: MatchState, session: Session, position: int) -> None:
    if state.told.get(session.uid) != position:
        state.told[session.uid] = position
        chat.direct(session, ev.Queue(position=position))


# ---- handoff -------------------------------------------------------------------------------
async def _handoff_target(
    chat: Chat,
    state: MatchState,
    profiles: dict[str, Profile],
    seeker: Profile,
    old: Session,
    request: rq.Handoff,
) -> Profile:
    """A listener who may take the chat, their place taken (so nobody else gets it)."""
    loads = loads_of(await shared_chats(chat))
    slots = await chat.broker.queued(SLOTS)
    if request.uid or request.name:
        key = name_key(request.name or "")
        slots = [s for s in slots if _named(chat, profiles, s, request.uid, key)]
    for _ in range(MAX_MATCHES):
        found = await _best_slot(chat, state, profiles, loads, slots, seeker, exclude=old.uid)
        if found is None:
            break
        if await chat.broker.dequeue(SLOTS, found[0]) is not None:
            return found[1]
        slots.remove(found[0])
    if request.uid or request.name:
        who = request.name or request.uid
        raise Refused("unavailable", f"{who} is not free to take this chat")
    raise Refused("unavailable", "no other listener is free to take this chat now")


def _named(chat: Chat, profiles: dict[str, Profile], item: str, uid: str | None, key: str) -> bool:
    listener = person(chat, profiles, slot_of(item)[0])
    if listener is None:
        return False
    return listener.member.uid == uid or name_key(listener.member.name) == key


async def _hand_over(
    chat: Chat, private: PrivateChat, seeker: Profile, old: Session, new: Profile
) -> None:
    """The new listener joins and reads the conversation so far; the seeker is told.

    Entering before reading history means a message can arrive twice (live and in the
    history) on a distributed broker, but never be missed; clients drop repeated ids.
    """
    room, private.listener = private.room, new.member.uid
    await chat.broker.set_flag(CHATS, room, FLAG_TTL, f"{private.seeker} {private.listener}")
    here = chat.sessions.get(new.member.uid)
    if here is not None:
        await chat.enter(here, room)
    else:  # their node enters them when the `matched` arrives, before what follows
        await chat.broker.direct(new.member.uid, ev.Matched(room=room, partner=seeker.member))
    history, _ = await chat.broker.history(room, 0)
    text = f"handed over by {old.name}; the conversation so far:"
    events: list[ev.Event] = [ev.Notice(kind="handoff", text=text, name=seeker.member.name)]
    events += history  # `new` is connected (`_may_take`): never kept while away
    if here is not None:
        events.insert(0, ev.Matched(room=room, partner=seeker.member))
    for event in events:
        await _send(chat, new.member.uid, event)
    text = f"{new.member.name} is taking over this chat and can read it so far; "
    text += "no need to start again"
    await _send(chat, private.seeker, ev.Notice(kind="handoff", text=text, name=new.member.name))
    log.info("one-to-one chat handed over room=%s", room)


async def _send(chat: Chat, uid: str, event: ev.Event) -> None:
    """To a person here at once, or through the broker to the node that holds them."""
    session = chat.sessions.get(uid)
    if session is not None:
        chat.direct(session, event)
    else:
        await chat.broker.direct(uid, event)


# ---- endings -------------------------------------------------------------------------------
async def _end(chat: Chat, state: MatchState, private: PrivateChat, by: str, reason: str) -> None:
    """End a chat because `by` left or is gone: the other side is told and leaves too."""
    state.chats.pop(private.room, None)
    await chat.broker.clear_flag(CHATS, private.room)
    sides = (private.seeker, private.listener)
    both = [s for uid in sides if (s := chat.sessions.get(uid))]
    for session in both:  # out of the room first: nothing said after `ended` is accepted
        await _drop_room(chat, session, private.room)
    for uid in sides:
        if uid != by:  # its node takes them out of the room before telling them
            await _send(chat, uid, ev.Ended(room=private.room, reason=reason))
    await offer_slots(chat, private.listener)
    chat.count("chats_ended")
    log.info("one-to-one chat ended room=%s reason=%s", private.room, reason)


async def _drop_room(chat: Chat, session: Session, room: str) -> None:
    await chat.take_out(session, room)  # their resume still replays it up to the end


async def _gone(chat: Chat, state: MatchState, uid: str) -> None:
    """Quit, forgot, or away past the resume grace: out of the queue, chats ended."""
    await _stop_listening(chat, state, uid)
    _unqueued(state, uid)
    await chat.broker.dequeue(SEEKERS, uid)
    await chat.broker.clear_flag(WHO, uid)
    state.written.pop(uid, None)
    for private in state.chats_of(uid):
        await _end(chat, state, private, uid, "partner_disconnected")
    await pump(chat, state)


def _forget(state: MatchState, uid: str) -> None:
    """They resumed on another node (which carries on from the shared state): let go here."""
    state.listening.discard(uid)
    _unqueued(state, uid)
    state.written.pop(uid, None)
    for private in state.chats_of(uid):
        state.chats.pop(private.room, None)


async def _refresh_profiles(chat: Chat, state: MatchState) -> None:
    """Others match from these: a person who went away, came back or ignored someone."""
    for uid in state.people(chat.sessions):
        session = chat.sessions.get(uid)
        if session is not None and state.written.get(uid) != profile_of(session):
            await write_profile(chat, state, session)


async def _renew(chat: Chat, state: MatchState) -> None:
    """Keep alive what this node's people hold (a dead node's expires), and take on those
    who resumed here from another node."""
    broker = chat.broker
    queued = set(await broker.queued(SEEKERS))
    listening = await broker.flags(LISTENING)
    chats = await shared_chats(chat)
    for uid, session in chat.sessions.items():
        if uid in queued:
            state.waiting.add(uid)
        if uid in listening:
            state.listening.add(uid)
        for room in session.rooms:
            if room in chats and uid in (chats[room].seeker, chats[room].listener):
                state.chats[room] = chats[room]  # also: a handoff elsewhere changed it
    for private in list(state.chats.values()):
        if private.seeker not in chat.sessions and private.listener not in chat.sessions:
            state.chats.pop(private.room, None)  # both sides resumed elsewhere
            continue
        await _renew_chat(chat, state, private, chats)
    for uid in state.listening:
        await broker.set_flag(LISTENING, uid, FLAG_TTL)
        await offer_slots(chat, uid)  # a place lost to a race between two nodes comes back
    for uid in state.waiting:
        await broker.enqueue(SEEKERS, uid, QUEUE_TTL)  # a no-op that keeps the queue alive
    for uid in state.people(chat.sessions):
        if (person := chat.sessions.get(uid)) is not None:
            await write_profile(chat, state, person)


async def _renew_chat(
    chat: Chat, state: MatchState, private: PrivateChat, chats: dict[str, PrivateChat]
) -> None:
    if private.room not in chats:
        return  # ended: the `ended` is on its way
    partner = private.listener if private.seeker in chat.sessions else private.seeker
    if partner not in chat.sessions and await chat.broker.get_flag(WHO, partner) is None:
        # Their node died and nobody resumed them: the chat cannot go on.
        await _end(chat, state, private, partner, "partner_disconnected")
        return
    pair = f"{private.seeker} {private.listener}"
    await chat.broker.set_flag(CHATS, private.room, FLAG_TTL, pair)
