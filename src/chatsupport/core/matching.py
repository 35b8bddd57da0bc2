"""One-to-one support: seekers wait in a queue, listeners say they are available, and a
match puts the two in a private `dm-` room (docs/one-to-one.md).

The rule that picks a pair is pure (match_rule.py: `choose`); the shared records it reads
are read and written by match_state.py. What this module keeps:
- First come, first served; a seeker flagged for crisis (`session.crisis`) goes ahead of
  everyone not flagged, behind those flagged earlier, and stays there across resumes.
- Anyone may ask from their first second; one open request per person, and at most
  `talk_requests` joins per `talk_window` (never limited for someone flagged for crisis).
- Waiting is honest: `queue {position, listeners, wait}` says where they are, how many
  listeners are on now and what recent waits suggest; a note written while waiting is
  shown to the listener in their `matched`.
- A chat ends when either side leaves its room (`leave`, or `end`, which can report the
  other side in the same step), quits, forgets, or is gone past the resume grace; the
  other side gets `ended`, the seeker is asked (anonymously) whether it helped.
- Listeners are looked after too: at most `listener_capacity` chats at once, a rest of
  `crisis_cooldown` after a chat with someone flagged for crisis, and `debrief` asks the
  moderators for one.

Matching is cluster-wide: the queue, listeners' free places, chats and what a node needs
to know of a person held elsewhere are in the broker; any node may decide a match,
taking the seeker and the listener's place with an atomic `dequeue`, and each side enters
the private room on the node that holds them (a `matched` through `broker.direct`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable

from . import events as ev
from . import requests as rq
from . import staff
from .chat import Chat, Refused
from .feature import Feature, handles
from .limits import WindowCounter
from .match_rule import Pair, PrivateChat, Profile, Slot, choose, estimate, place_for
from .match_state import (
    CHATS,
    FLAG_TTL,
    LISTENING,
    MAX_MATCHES,
    MAX_NOTE,
    QUEUE_TTL,
    RENEW_EVERY,
    RESTING,
    SEEKERS,
    SLOTS,
    WHO,
    MatchState,
    capacity,
    free_slots,
    offer_slots,
    outlook,
    person,
    profiles_of,
    read_board,
    record_chat,
    remember_wait,
    shared_chat,
    shared_chats,
    slot_item,
    withdraw_slots,
    write_profile,
)
from .moderation import duration
from .names import name_key
from .people import find_anywhere
from .reports import Reports
from .rooms import PRIVATE_PREFIX, is_private, normalise_room
from .session import Link, Session
from .text import clean

log = logging.getLogger("chatsupport.matching")

FEEDBACK = ("helpful", "not_really", "skip")
STOPPED_TO_TALK = (
    "you will not be offered new chats while you wait for a listener yourself; "
    "turn listening on again (/listen on) when you are ready"
)
TOO_OFTEN = (
    "you have asked for a listener many times in a few minutes; please wait a little. "
    "Help lines are there for you at any time."
)


def _note(raw: str | None) -> str:
    return clean(raw or "", keep_newlines=False)[:MAX_NOTE]


class Matching(Feature):
    """One-to-one support: the requests, and what this node keeps (the shared part is in
    the broker). After safety in the feature list: `after_say` reads the crisis flag."""

    def __init__(self) -> None:
        self.state = MatchState()

    def bind(self, chat: Chat) -> None:
        super().bind(chat)
        config = chat.config
        self.talks = WindowCounter(max(1, config.talk_requests), config.talk_window)

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
        uid, note = session.uid, _note(request.note)
        if uid in await chat.broker.queued(SEEKERS):
            if note:  # what is on their mind, while they wait: their place is kept
                state.notes[uid] = note
                await write_profile(chat, state, session)
                text = "your listener will see what you wrote as soon as you are matched"
                chat.reply(link, ev.Notice(kind="talk", text=text), request)
                return
            if await chat.broker.dequeue(SEEKERS, uid) is not None:
                state.unqueued(uid)
                text = "you left the queue; /talk to join it again"
                chat.reply(link, ev.Notice(kind="talk", text=text), request)
                await _tell_positions(chat, state)
                return
        current = state.seeker_chat(uid)
        if current is not None:
            raise Refused(
                "bad_request", f"you are already talking with a listener in #{current.room}"
            )
        # No probation here: a newcomer may need a listener from their first second
        # (CONTRACT §8). Only how often one person joins is limited, never for a crisis.
        if not session.crisis and not self.talks.hit(uid, chat.clock()):
            raise Refused("rate_limited", TOO_OFTEN)
        if uid in state.listening:  # a listener who needs one: not both at once
            await _stop_listening(chat, state, uid)
            chat.direct(session, ev.Notice(kind="listen", text=STOPPED_TO_TALK))
        state.since[uid], state.notes[uid] = chat.wallclock(), note
        await write_profile(chat, state, session)  # before the queue: others match from it
        priority = 0 if session.crisis else 1
        position = await chat.broker.enqueue(SEEKERS, uid, QUEUE_TTL, priority)
        state.waiting.add(uid)
        if session.crisis:
            state.flagged.add(uid)
        state.outlook = await outlook(chat)
        chat.reply(link, _queue_event(state, position), request)
        state.told[uid] = _told(state, position)
        chat.count("talk_requests")
        await pump(chat, state)
        if uid in await chat.broker.queued(SEEKERS):  # nobody free took them: listeners hear
            await _tell_listeners_someone_waits(chat, uid)

    @handles(rq.Listen, role="listener")
    async def listen(self, link: Link, request: rq.Listen) -> None:
        chat, state, session = self.chat, self.state, link.session
        if request.on:
            await _start_listening(chat, state, session)
            waiting = len(await chat.broker.queued(SEEKERS))
            text = f"you are available for one-to-one chats (up to {capacity(chat)} at once); "
            text += f"{waiting} waiting"
        else:
            await _stop_listening(chat, state, session.uid)
            active = sum(c.listener == session.uid for c in (await shared_chats(chat)).values())
            text = "you will not be offered new chats"
            text += f"; your {active} current chat(s) go on" if active else ""
        chat.reply(link, ev.Notice(kind="listen", text=text), request)
        await pump(chat, state)  # a match, or waiting seekers told how many are on

    @handles(rq.Handoff, role="listener")
    async def handoff(self, link: Link, request: rq.Handoff) -> None:
        chat, state, session = self.chat, self.state, link.session
        room = normalise_room(request.room) if request.room else session.current or ""
        private = state.chats.get(room)
        profiles = await profiles_of(chat)
        seeker = person(chat, state, profiles, private.seeker) if private else None
        if private is None or seeker is None or private.listener != session.uid:
            raise Refused("bad_request", "/handoff works in a one-to-one chat you are listening in")
        target = await _handoff_target(chat, state, seeker, session, request)
        await _hand_over(chat, private, seeker, session, target, _note(request.note))
        if private.seeker not in chat.sessions and private.listener not in chat.sessions:
            state.chats.pop(room, None)  # nobody in it is here any more
        await chat.exit(session, room)
        chat.reply(link, ev.Ended(room=room, reason="handed_over"), request)
        await offer_slots(chat, session.uid)  # free again: behind those free longer
        chat.count("handoffs")
        await pump(chat, state)

    @handles(rq.End)
    async def end(self, link: Link, request: rq.End) -> None:
        """End a one-to-one chat, and (with `report`) report the other side, in one step."""
        chat, session = self.chat, link.session
        room = normalise_room(request.room) if request.room else session.current or ""
        private = self.state.chats.get(room)
        if private is None and is_private(room):
            private = await shared_chat(chat, room)
        sides = (private.seeker, private.listener) if private else ()
        if private is None or session.uid not in sides or room not in session.rooms:
            raise Refused("bad_request", "/end works in a one-to-one chat you are in")
        if request.report is not None:
            other = private.listener if session.uid == private.seeker else private.seeker
            members = {m.uid: m for m in await chat.broker.members(room)}
            who = members.get(other) or ev.Member(other, "the other person")
            await chat.feature(Reports).about(link, request, room, who)
        await chat.exit(session, room)
        chat.reply(link, ev.Left(room=room), request)
        await chat.left(session, room)  # ends the chat for the other side (`on_leave`)

    @handles(rq.Feedback, cost=0)
    async def feedback(self, link: Link, request: rq.Feedback) -> None:
        """ "Did this help?" after a chat: a count in the metrics, never kept with anyone."""
        if request.answer not in FEEDBACK:
            raise Refused("bad_request", "feedback is helpful, not_really or skip")
        if link.session.uid not in self.state.may_rate:
            raise Refused("bad_request", "there is no ended one-to-one chat to say that about")
        self.state.may_rate.discard(link.session.uid)
        self.chat.count(f"feedback_{request.answer}")
        self.chat.reply(link, ev.Notice(kind="thanks", text="thank you for saying"), request)

    @handles(rq.Offer, role="listener")
    async def offer(self, link: Link, request: rq.Offer) -> None:
        """Tell someone a listener is there for them: the person chooses (`talk`); the
        listener becomes available, so that a crisis-flagged seeker is theirs at once."""
        chat, session = self.chat, link.session
        target = await find_anywhere(chat, request.uid, request.name)
        if target.uid == session.uid:
            raise Refused("bad_request", "you cannot offer a chat to yourself")
        text = f"{session.name}, a listener, is here if you would like to talk privately."
        await _send(chat, target.uid, ev.Notice(kind="offer", text=text, name=session.name))
        if session.uid not in self.state.listening:
            await _start_listening(chat, self.state, session)
        chat.count("offers")
        text = "they have been told you are there for them; it is their choice to talk"
        text += " (you are available for one-to-one chats now)"
        chat.reply(link, ev.Notice(kind="offered", text=text), request)
        await pump(chat, self.state)

    @handles(rq.Debrief, role="listener")
    async def debrief(self, link: Link, request: rq.Debrief) -> None:
        """A listener asks for a debrief: the moderators get an alert, on every node."""
        session = link.session
        text = _note(request.note) or "asks for a debrief after a hard conversation"
        alert = ev.Alert(kind="debrief", room="", uid=session.uid, name=session.name, text=text)
        await staff.tell_mods(self.chat, alert)
        self.chat.count("debriefs")
        text = "the moderators have been asked and will reach out; take the time you need"
        self.chat.reply(link, ev.Notice(kind="debrief", text=text), request)

    @handles(rq.QueueStatus, role="mod")
    async def queue_status(self, link: Link, request: rq.QueueStatus) -> None:
        """Moderators see numbers only: never who waits, who talks with whom, or what is said."""
        chat, state = self.chat, self.state
        waiting = await chat.broker.queued(SEEKERS)
        profiles = await profiles_of(chat)
        flagged = sum(
            1 for uid in waiting if (p := person(chat, state, profiles, uid)) and p.crisis
        )
        free = {slot.uid for slot in await free_slots(chat)}
        text = (
            f"{len(waiting)} waiting for a listener ({flagged} flagged for crisis); "
            f"{len(await shared_chats(chat))} one-to-one chats active; {len(free)} listeners free"
        )
        chat.reply(link, ev.Notice(kind="queue", text=text), request)

    # ---- hooks ---------------------------------------------------------------------------------
    async def after_say(self, session: Session, message: ev.Message) -> None:
        await prioritise(self.chat, self.state, session)  # safety set the flag just before

    async def on_refused(self, link: Link, request: rq.Request, refusal: Refused) -> None:
        await prioritise(self.chat, self.state, link.session)  # crisis words in a refused one

    async def on_leave(self, session: Session, room: str) -> None:
        chat, state = self.chat, self.state
        private = state.chats.get(room)
        if private is None and is_private(room):  # resumed here from another node just now
            private = await shared_chat(chat, room)
        if private is not None and session.uid in (private.seeker, private.listener):
            await _end(chat, state, private, session.uid, "partner_left")
            await pump(chat, state)

    async def on_resume(self, session: Session) -> None:
        """Back (here, or from another node): their place, their listening, their chats
        carry on at once, and a waiting seeker is told where they stand afresh."""
        chat, state = self.chat, self.state
        queued = await chat.broker.queued(SEEKERS)
        await _take_on(chat, state, session, set(queued), await chat.broker.flags(LISTENING))
        if session.uid in queued:
            state.told.pop(session.uid, None)  # their page may have been reloaded
            state.outlook = await outlook(chat)
            _tell(chat, state, session, queued.index(session.uid) + 1)
        if session.uid in state.people(chat.sessions):
            await write_profile(chat, state, session)  # no longer away
            await pump(chat, state)

    async def on_end(self, session: Session) -> None:
        state = self.state  # they are no longer in chat.sessions
        state.may_rate.discard(session.uid)
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
        self.talks.prune(chat.clock())
        for uid in state.waiting - state.flagged:  # crisis words said while the broker was away
            if (session := chat.sessions.get(uid)) is not None:
                await prioritise(chat, state, session)
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
        if isinstance(event, ev.Notice) and event.kind == "feedback":
            self.state.may_rate.add(session.uid)  # their chat ended on another node
        return None

    async def _matched_elsewhere(self, session: Session, event: ev.Matched) -> None:
        private = await shared_chat(self.chat, event.room)
        if private is None or session.uid not in (private.seeker, private.listener):
            return  # ended meanwhile (its `ended` follows) or not theirs: nothing to enter
        await _enter(self.chat, self.state, session, private)
        self.chat.direct(session, event)

    async def _ended_elsewhere(self, session: Session, event: ev.Ended) -> None:
        self.state.chats.pop(event.room, None)
        await _drop_room(self.chat, session, event.room)
        self.chat.direct(session, event)

    async def _handed_over_elsewhere(self, session: Session, event: ev.Notice) -> None:
        """A seeker whose chat another node handed over: crisis alerts go to the new listener."""
        private = self.state.seeker_chat(session.uid)
        if private is not None:
            shared = await shared_chat(self.chat, private.room)
            if shared is not None and shared.seeker == session.uid:
                private.listener = shared.listener
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


async def _start_listening(chat: Chat, state: MatchState, session: Session) -> None:
    await write_profile(chat, state, session)
    await chat.broker.set_flag(LISTENING, session.uid, FLAG_TTL)
    state.listening.add(session.uid)
    await offer_slots(chat, session.uid)


async def _stop_listening(chat: Chat, state: MatchState, uid: str) -> None:
    state.listening.discard(uid)
    await chat.broker.clear_flag(LISTENING, uid)
    await withdraw_slots(chat, uid)


# ---- matching ------------------------------------------------------------------------------
async def pump(chat: Chat, state: MatchState) -> None:
    """Match while a waiting seeker and a free listener fit together; then tell positions.

    Any node may decide a match (`choose`, on one read of the shared state): it takes the
    listener's place, then the seeker, each with an atomic `dequeue`, so two nodes never
    take the same seeker or the same place."""
    for _ in range(MAX_MATCHES):
        seekers = await chat.broker.queued(SEEKERS)
        if not seekers or not await chat.broker.queued(SLOTS):
            break
        pair = choose(await read_board(chat, state, seekers))
        if pair is None:
            break
        if await _take(chat, pair):
            await _match(chat, state, pair)
    await _tell_positions(chat, state)


async def _take(chat: Chat, pair: Pair) -> bool:
    broker, slot = chat.broker, pair.slot
    if await broker.dequeue(SLOTS, slot_item(slot.uid, slot.k)) is None:
        return False  # another node took this place meanwhile
    if await broker.dequeue(SEEKERS, pair.seeker.member.uid) is None:
        # The seeker went (or was matched elsewhere): give the place back.
        await broker.enqueue(SLOTS, slot_item(slot.uid, slot.k), QUEUE_TTL, priority=slot.k)
        return False
    return True


async def _match(chat: Chat, state: MatchState, pair: Pair) -> None:
    """Record the chat, then each side enters the room on the node that holds them."""
    room = PRIVATE_PREFIX + secrets.token_hex(8)
    seeker, listener = pair.seeker, pair.listener
    private = PrivateChat(room, seeker.member.uid, listener.member.uid)
    await record_chat(chat, private)
    if seeker.since:
        await remember_wait(chat, chat.wallclock() - seeker.since)
    to_seeker = ev.Matched(room=room, partner=listener.member)
    to_listener = ev.Matched(room=room, partner=seeker.member, note=seeker.note or None)
    sides = ((private.listener, to_listener), (private.seeker, to_seeker))
    local = [(s, event) for uid, event in sides if (s := chat.sessions.get(uid))]
    for session, _ in local:
        await _enter(chat, state, session, private)
    for session, event in reversed(local):  # the seeker hears first, as on one node
        chat.direct(session, event)
    for uid, event in sides:
        if uid not in chat.sessions:
            await chat.broker.direct(uid, event)
    chat.count("matches")
    log.info("one-to-one chat started room=%s", room)


async def _enter(chat: Chat, state: MatchState, session: Session, private: PrivateChat) -> None:
    state.chats[private.room] = private
    if session.uid == private.seeker:
        state.unqueued(session.uid)
    await chat.enter(session, private.room, announce=False)  # a text peer's lines go there


async def _tell_listeners_someone_waits(chat: Chat, asking: str) -> None:
    """Every signed-in listener, on every node, hears that someone waits (never who); the
    one asking not (a listener may need one too)."""
    waiting = len(await chat.broker.queued(SEEKERS))
    text = f"someone is waiting for a listener ({waiting} waiting)"
    alert = ev.Alert(kind="waiting", room="", uid="", name="", text=text)
    await chat.broker.signal(staff.LISTENERS, alert, asking)


# ---- telling seekers where they stand -------------------------------------------------------
def _told(state: MatchState, position: int) -> tuple[int, int, float | None]:
    listeners, waits = state.outlook
    return position, listeners, estimate(waits, position, listeners)


def _queue_event(state: MatchState, position: int) -> ev.Queue:
    _, listeners, wait = _told(state, position)
    return ev.Queue(position=position, listeners=listeners, wait=wait)


async def _tell_positions(chat: Chat, state: MatchState) -> None:
    """Tell each waiting seeker where they stand when it changed (their place, listeners
    on, the estimate): directly to those here; through the broker to the others whose
    place changed (their node adds its own reading of the rest, and drops a repeat)."""
    order = await chat.broker.queued(SEEKERS)
    look = await outlook(chat) if order else state.outlook
    if order == state.order and look == state.outlook:
        return
    before = {uid: position for position, uid in enumerate(state.order, 1)}
    state.order, state.outlook = order, look
    for position, uid in enumerate(order, 1):
        session = chat.sessions.get(uid)
        if session is not None:
            _tell(chat, state, session, position)
        elif before.get(uid) != position:
            await chat.broker.direct(uid, _queue_event(state, position))


def _tell(chat: Chat, state: MatchState, session: Session, position: int) -> None:
    told = _told(state, position)
    if state.told.get(session.uid) != told:
        state.told[session.uid] = told
        chat.direct(session, _queue_event(state, position))


# ---- handoff -------------------------------------------------------------------------------
async def _handoff_target(
    chat: Chat, state: MatchState, seeker: Profile, old: Session, request: rq.Handoff
) -> Profile:
    """A listener who may take the chat, their place taken (so nobody else gets it)."""
    board = await read_board(chat, state, [])
    slots: list[Slot] = list(board.slots)
    if request.uid or request.name:
        key = name_key(request.name or "")
        slots = [
            s
            for s in slots
            if s.uid == request.uid or name_key(board.people[s.uid].member.name) == key
        ]
    for _ in range(MAX_MATCHES):
        found = place_for(board, seeker, slots, exclude=old.uid)
        if found is None:
            break
        if await chat.broker.dequeue(SLOTS, slot_item(found.uid, found.k)) is not None:
            return board.people[found.uid]
        slots.remove(found)
    if request.uid or request.name:
        who = request.name or request.uid
        raise Refused("unavailable", f"{who} is not free to take this chat")
    raise Refused("unavailable", "no other listener is free to take this chat now")


async def _hand_over(
    chat: Chat, private: PrivateChat, seeker: Profile, old: Session, new: Profile, note: str
) -> None:
    """The new listener joins and reads the conversation so far; the seeker is told, with
    the old listener's note (if any) to both.

    Entering before reading history means a message can arrive twice (live and in the
    history) on a distributed broker, but never be missed; clients drop repeated ids.
    """
    room, private.listener = private.room, new.member.uid
    await record_chat(chat, private)
    here = chat.sessions.get(new.member.uid)
    if here is not None:
        await chat.enter(here, room)
    else:  # their node enters them when the `matched` arrives, before what follows
        await chat.broker.direct(new.member.uid, ev.Matched(room=room, partner=seeker.member))
    history, _ = await chat.broker.history(room, 0)
    said = f' {old.name} says: "{note}"' if note else ""
    text = f"handed over by {old.name}; the conversation so far follows.{said}"
    events: list[ev.Event] = [ev.Notice(kind="handoff", text=text, name=seeker.member.name)]
    events += history  # `new` is connected (`may_take`): never kept while away
    if here is not None:
        events.insert(0, ev.Matched(room=room, partner=seeker.member))
    for event in events:
        await _send(chat, new.member.uid, event)
    text = f"{new.member.name} is taking over this chat and can read it so far; "
    text += f"no need to start again.{said}"
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
    """End a chat because `by` left or is gone: the other side is told and leaves too; the
    seeker is asked whether it helped; after a crisis-flagged chat the listener rests."""
    state.chats.pop(private.room, None)
    await chat.broker.clear_flag(CHATS, private.room)
    sides = (private.seeker, private.listener)
    both = [s for uid in sides if (s := chat.sessions.get(uid))]
    for session in both:  # out of the room first: nothing said after `ended` is accepted
        await _drop_room(chat, session, private.room)
    for uid in sides:
        if uid != by:  # its node takes them out of the room before telling them
            await _send(chat, uid, ev.Ended(room=private.room, reason=reason))
    await _ask_feedback(chat, state, private.seeker)
    await _rest_after(chat, state, private)
    await offer_slots(chat, private.listener)
    chat.count("chats_ended")
    log.info("one-to-one chat ended room=%s reason=%s", private.room, reason)


async def _ask_feedback(chat: Chat, state: MatchState, seeker: str) -> None:
    if seeker in chat.sessions:
        state.may_rate.add(seeker)
    text = "Did this conversation help? Your answer is counted anonymously, never kept with you."
    await _send(chat, seeker, ev.Notice(kind="feedback", text=text))


async def _rest_after(chat: Chat, state: MatchState, private: PrivateChat) -> None:
    """A listener whose seeker was flagged for crisis is not offered a chat for a while."""
    rest = chat.config.crisis_cooldown
    seeker = person(chat, state, await profiles_of(chat), private.seeker)
    if rest <= 0 or seeker is None or not seeker.crisis:
        return
    await chat.broker.set_flag(RESTING, private.listener, rest)
    text = (
        f"That was a heavy conversation. Take a breath: no new chat will be offered to you "
        f"for {duration(rest)}. If you would like to talk it through, ask for a debrief."
    )
    await _send(chat, private.listener, ev.Notice(kind="rest", text=text))


async def _drop_room(chat: Chat, session: Session, room: str) -> None:
    await chat.take_out(session, room)  # their resume still replays it up to the end


async def _gone(chat: Chat, state: MatchState, uid: str) -> None:
    """Quit, forgot, or away past the resume grace: out of the queue, chats ended."""
    await _stop_listening(chat, state, uid)
    state.unqueued(uid)
    await chat.broker.dequeue(SEEKERS, uid)
    await chat.broker.clear_flag(WHO, uid)
    state.written.pop(uid, None)
    for private in state.chats_of(uid):
        await _end(chat, state, private, uid, "partner_disconnected")
    await pump(chat, state)


def _forget(state: MatchState, uid: str) -> None:
    """They resumed on another node (which carries on from the shared state): let go here."""
    state.listening.discard(uid)
    state.unqueued(uid)
    state.written.pop(uid, None)
    state.may_rate.discard(uid)
    for private in state.chats_of(uid):
        state.chats.pop(private.room, None)


async def _refresh_profiles(chat: Chat, state: MatchState) -> None:
    """Others match from these: a person who went away, came back or ignored someone."""
    for uid in state.people(chat.sessions):
        session = chat.sessions.get(uid)
        if session is not None and state.written.get(uid) != person(chat, state, {}, uid):
            await write_profile(chat, state, session)


async def _take_on(
    chat: Chat,
    state: MatchState,
    session: Session,
    queued: set[str],
    listening: dict[str, str],
    chats: dict[str, PrivateChat] | None = None,
) -> None:
    """What the shared state says of a person held here (perhaps resumed from another
    node): waiting (with their note and since when), listening, in which chats."""
    uid = session.uid
    if uid in queued and uid not in state.waiting:
        shared = (await profiles_of(chat)).get(uid)
        if shared is not None:
            state.since.setdefault(uid, shared.since)
            state.notes.setdefault(uid, shared.note)
        state.waiting.add(uid)
        if session.crisis:
            state.flagged.add(uid)
    if uid in listening:
        state.listening.add(uid)
    for room in session.rooms:
        private = chats.get(room) if chats is not None else await shared_chat(chat, room)
        if private is not None and uid in (private.seeker, private.listener):
            state.chats[room] = private  # also: a handoff elsewhere changed it


async def _renew(chat: Chat, state: MatchState) -> None:
    """Keep alive what this node's people hold (a dead node's expires), and take on those
    who resumed here from another node."""
    broker = chat.broker
    queued = set(await broker.queued(SEEKERS))
    listening = await broker.flags(LISTENING)
    chats = await shared_chats(chat)
    for session in list(chat.sessions.values()):
        await _take_on(chat, state, session, queued, listening, chats)
    for private in list(state.chats.values()):
        if private.seeker not in chat.sessions and private.listener not in chat.sessions:
            state.chats.pop(private.room, None)  # both sides resumed elsewhere
            continue
        await _renew_chat(chat, state, private, chats)
    for uid in state.listening:
        await broker.set_flag(LISTENING, uid, FLAG_TTL)
        await offer_slots(chat, uid)  # a place lost to a race between two nodes comes back
    for uid in state.waiting:  # a no-op that keeps the queue alive, or puts them back
        await broker.enqueue(SEEKERS, uid, QUEUE_TTL, 0 if uid in state.flagged else 1)
    for uid in state.people(chat.sessions):
        if (here := chat.sessions.get(uid)) is not None:
            await write_profile(chat, state, here)


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
    await record_chat(chat, private)
