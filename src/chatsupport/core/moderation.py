"""Moderation: what lets a moderator stop a troll within seconds.

Moderators (role `mod`) kick, mute, shadow-mute, ban (by session and by the keyed hash
of the network address), unban, announce, put a room in slow mode and lock it. This
module also holds the state flood.py works on (automatic mutes, probation):
`Moderation.on_probation(session, now)` tells other features (one-to-one matching) who
is still new. Reports live in reports.py, crisis support in safety.py.

All of it is state in memory on this node, on the monotonic clock passed to the Chat,
and forgotten when it expires (`_tick`). Nothing here is written anywhere.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from ..config import Config
from . import events as ev
from . import requests as rq
from . import staff
from .chat import (
    ADMIT_CHECKS,
    END_HOOKS,
    JOIN_CHECKS,
    SAID_HOOKS,
    SAY_CHECKS,
    TICK_HOOKS,
    Chat,
    Refused,
    handles,
)
from .handlers import draft
from .limits import WindowCounter
from .names import name_key
from .rooms import normalise_room, valid_room
from .session import Link, Session
from .text import clean

log = logging.getLogger("chatsupport.moderation")

MAX_MINUTES = 60 * 24 * 30
MAX_SLOW_SECONDS = 3600.0


def duration(seconds: float) -> str:
    """`90` -> "2 minutes": how long, the way a person would say it."""
    if seconds < 60:
        whole = max(1, round(seconds))
        return f"{whole} second{'s' if whole != 1 else ''}"
    if seconds < 2 * 3600:
        whole = round(seconds / 60)
        return f"{whole} minute{'s' if whole != 1 else ''}"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} hours"
    return f"{round(seconds / 86400)} days"


@dataclass(slots=True)
class BanEntry:
    name: str
    name_key: str
    address_keys: set[str]
    until: float


@dataclass(slots=True)
class Moderation:
    """This node's moderation state (kept in `chat.extensions["moderation"]`)."""

    config: Config
    mutes: dict[str, float] = field(default_factory=dict)  # uid -> until
    shadows: dict[str, float] = field(default_factory=dict)  # uid -> until
    bans: dict[str, BanEntry] = field(default_factory=dict)  # uid -> ban
    banned: dict[str, float] = field(default_factory=dict)  # address key -> until
    slow: dict[str, float] = field(default_factory=dict)  # room -> seconds between messages
    spoke: dict[tuple[str, str], float] = field(default_factory=dict)  # (room, uid) -> when
    locked: dict[str, set[str]] = field(default_factory=dict)  # room -> who may still speak
    hidden: deque[tuple[float, tuple[str, int]]] = field(default_factory=deque)
    told_probation: set[str] = field(default_factory=set)
    strikes: WindowCounter = field(init=False)

    def __post_init__(self) -> None:
        self.strikes = WindowCounter(self.config.flood_strikes, self.config.flood_window)

    def on_probation(self, session: Session, now: float) -> bool:
        """New arrivals, for their first `probation_seconds`; staff never are."""
        return session.role is None and now - session.created < self.config.probation_seconds

    def muted_for(self, uid: str, now: float) -> float:
        return max(0.0, self.mutes.get(uid, 0.0) - now)

    def ban_left(self, address_key: str, now: float) -> float:
        return max(0.0, self.banned.get(address_key, 0.0) - now)

    def lift_ban(self, uid: str) -> BanEntry | None:
        entry = self.bans.pop(uid, None)
        if entry is not None:
            for key in entry.address_keys:
                self.banned.pop(key, None)
            for other in self.bans.values():  # a key two bans share stays banned
                for key in other.address_keys & entry.address_keys:
                    self.banned[key] = max(self.banned.get(key, 0.0), other.until)
        return entry


def moderation_of(chat: Chat) -> Moderation:
    return chat.extension("moderation", Moderation, lambda: Moderation(chat.config))


# ---- helpers -------------------------------------------------------------------------------
def _target(chat: Chat, link: Link, uid: str | None, name: str | None) -> Session:
    target = staff.find_person(chat, uid, name)
    if target is link.session:
        raise Refused("bad_request", "you cannot do that to yourself")
    if target.role == "mod":
        raise Refused("forbidden", "moderators cannot do that to each other")
    return target


def _seconds(minutes: float) -> float:
    if not 0 < minutes <= MAX_MINUTES:
        raise Refused("bad_request", f"minutes must be between 0 and {MAX_MINUTES}")
    return minutes * 60.0


def _room(raw: str) -> str:
    room = normalise_room(raw)
    if not valid_room(room):
        raise Refused("bad_request", "room names are 1-32 of a-z, 0-9 and -")
    return room


async def disconnect(chat: Chat, target: Session, reason: str, text: str) -> None:
    """Tell them why, say goodbye, and end the session for good (no resume)."""
    link = target.link
    if link is None:  # between connections, waiting to resume: just end it
        await chat.end_session(target)
        return
    chat.send(link, ev.Notice(kind=reason, text=text))
    chat.send(link, ev.Bye(reason=reason))
    link.sink.close(reason)
    await chat.close(link, reason, resumable=False)


def _done(chat: Chat, link: Link, request: rq.Request, kind: str, text: str, name: str) -> None:
    chat.reply(link, ev.Notice(kind=kind, text=text, name=name), request)


# ---- moderator actions ---------------------------------------------------------------------
@handles(rq.Kick)
async def kick(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Kick)
    staff.require_mod(link)
    target = _target(chat, link, request.uid, request.name)
    reason = clean(request.reason, keep_newlines=False)[:200]
    text = "a moderator disconnected you" + (f": {reason}" if reason else "")
    await disconnect(chat, target, "kicked", text)
    chat.count("mod_kicks")
    log.info("kick by=%s target=%s", link.session.uid, target.uid)
    _done(chat, link, request, "kick", f"{target.name} was disconnected", target.name)


@handles(rq.Mute)
async def mute(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Mute)
    staff.require_mod(link)
    target = _target(chat, link, request.uid, request.name)
    seconds = _seconds(request.minutes)
    moderation_of(chat).mutes[target.uid] = chat.clock() + seconds
    chat.direct(
        target,
        ev.Notice(
            kind="mute",
            text=f"a moderator muted you for {duration(seconds)}: you can read but not write",
        ),
    )
    chat.count("mod_mutes")
    log.info("mute by=%s target=%s", link.session.uid, target.uid)
    text = f"{target.name} is muted for {duration(seconds)}"
    _done(chat, link, request, "mute", text, target.name)


@handles(rq.Shadow)
async def shadow(chat: Chat, link: Link, request: rq.Request) -> None:
    """Their messages reach only themselves; nothing they receive tells them so."""
    assert isinstance(request, rq.Shadow)
    staff.require_mod(link)
    target = _target(chat, link, request.uid, request.name)
    seconds = _seconds(request.minutes)
    moderation_of(chat).shadows[target.uid] = chat.clock() + seconds
    chat.shadowed.add(target.uid)
    chat.count("mod_shadows")
    log.info("shadow by=%s target=%s", link.session.uid, target.uid)
    text = f"{target.name} is shadow-muted for {duration(seconds)}: only they see their messages"
    _done(chat, link, request, "shadow", text, target.name)


@handles(rq.Ban)
async def ban(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Ban)
    staff.require_mod(link)
    target = _target(chat, link, request.uid, request.name)
    seconds = _seconds(request.minutes)
    state = moderation_of(chat)
    until = chat.clock() + seconds
    keys = {target.address_key} | ({target.link.address_key} if target.link else set())
    state.bans[target.uid] = BanEntry(target.name, target.name_key, keys, until)
    for key in keys:
        state.banned[key] = max(state.banned.get(key, 0.0), until)
    await disconnect(chat, target, "banned", f"a moderator banned you for {duration(seconds)}")
    chat.count("mod_bans")
    log.info("ban by=%s target=%s", link.session.uid, target.uid)
    text = f"{target.name} is banned for {duration(seconds)}"
    _done(chat, link, request, "ban", text, target.name)


@handles(rq.Unban)
async def unban(chat: Chat, link: Link, request: rq.Request) -> None:
    """Lift whatever holds the person: a ban, a mute, a shadow-mute."""
    assert isinstance(request, rq.Unban)
    staff.require_mod(link)
    state = moderation_of(chat)
    who = request.uid or request.name or ""
    lifted: list[str] = []
    key = name_key(request.name) if request.name else None
    banned_uid = request.uid or next((u for u, b in state.bans.items() if b.name_key == key), None)
    entry = state.lift_ban(banned_uid) if banned_uid else None
    if entry is not None:
        lifted.append("ban")
        who = entry.name
    person = _person_or_none(chat, request.uid, request.name)
    if person is not None:
        who = person.name
        if state.mutes.pop(person.uid, None) is not None:
            lifted.append("mute")
            chat.direct(person, ev.Notice(kind="unmute", text="you can write again"))
        if state.shadows.pop(person.uid, None) is not None:
            chat.shadowed.discard(person.uid)
            lifted.append("shadow-mute")
    if not lifted:
        raise Refused("bad_request", f"{who} is not banned or muted")
    chat.count("mod_unbans")
    log.info("unban by=%s lifted=%s", link.session.uid, ",".join(lifted))
    _done(chat, link, request, "unban", f"lifted for {who}: {', '.join(lifted)}", who)


def _person_or_none(chat: Chat, uid: str | None, name: str | None) -> Session | None:
    try:
        return staff.find_person(chat, uid, name)
    except Refused:
        return None


@handles(rq.Announce)
async def announce(chat: Chat, link: Link, request: rq.Request) -> None:
    """A message of kind `announce` in every room (`***` on the text interface)."""
    assert isinstance(request, rq.Announce)
    staff.require_mod(link)
    text = clean(request.text)
    if not text:
        raise Refused("bad_request", "the announcement is empty")
    if len(text) > chat.config.max_text:
        raise Refused("too_long", f"messages are at most {chat.config.max_text} characters")
    session = link.session
    rooms = [info.name for info in await chat.broker.room_counts()]
    for room in rooms:
        await chat.broker.publish(draft(session, room, "announce", text), None)
    chat.count("mod_announcements")
    count = len(rooms)
    _done(chat, link, request, "announced", f"announced in {count} room(s)", session.name)


@handles(rq.Slow)
async def slow(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Slow)
    staff.require_mod(link)
    room = _room(request.room)
    seconds = request.seconds
    if not 0 <= seconds <= MAX_SLOW_SECONDS:
        raise Refused("bad_request", f"seconds must be between 0 (off) and {MAX_SLOW_SECONDS:g}")
    state = moderation_of(chat)
    if seconds == 0:
        state.slow.pop(room, None)
        text = f"slow mode is off in #{room}"
    else:
        state.slow[room] = seconds
        text = f"#{room} is in slow mode: one message every {duration(seconds)} each"
    await _tell_room(chat, link, room, "slow", text)
    _done(chat, link, request, "slow", text, room)


@handles(rq.Lock, rq.Unlock)
async def lock(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Lock | rq.Unlock)
    staff.require_mod(link)
    room = _room(request.room)
    state = moderation_of(chat)
    if isinstance(request, rq.Lock):
        state.locked[room] = {m.uid for m in await chat.broker.members(room)}
        text = f"#{room} is locked for now: only people already here can speak"
    else:
        if state.locked.pop(room, None) is None:
            raise Refused("bad_request", f"#{room} is not locked")
        text = f"#{room} is open again"
    await _tell_room(chat, link, room, "lock" if isinstance(request, rq.Lock) else "unlock", text)
    _done(chat, link, request, type(request).__name__.lower(), text, room)


async def _tell_room(chat: Chat, link: Link, room: str, kind: str, text: str) -> None:
    # The moderator is the sender: they get the reply, not a second copy.
    await chat.broker.signal(room, ev.Notice(kind=kind, text=text), link.session.uid)


# ---- checks: what a mute, slow mode, lock, ban or probation means -------------------------
def _may_say(chat: Chat, session: Session, room: str, text: str) -> None:
    state = moderation_of(chat)
    now = chat.clock()
    left = state.muted_for(session.uid, now)
    if left > 0:
        raise Refused("muted", f"you are muted for {duration(left)} more; you can still read")
    if staff.is_staff(session):
        return
    allowed = state.locked.get(room)
    if allowed is not None and session.uid not in allowed:
        raise Refused("forbidden", f"#{room} is locked for now: only people already there speak")
    interval = state.slow.get(room)
    last = state.spoke.get((room, session.uid))
    if interval and last is not None and now - last < interval:
        wait = duration(interval - (now - last))
        raise Refused("rate_limited", f"#{room} is in slow mode: wait {wait} before writing")


def _may_join(chat: Chat, session: Session, room: str) -> None:
    allowed = moderation_of(chat).locked.get(room)
    if allowed is not None and session.uid not in allowed and not staff.is_staff(session):
        raise Refused("forbidden", f"#{room} is locked for now; try again later")


async def _said(chat: Chat, session: Session, message: ev.Message) -> None:
    state = moderation_of(chat)
    if message.room in state.slow:
        state.spoke[(message.room, session.uid)] = chat.clock()
    if session.uid in chat.shadowed:
        key = (message.room, message.id)
        chat.hidden.add(key)
        state.hidden.append((chat.clock(), key))


def _admit(chat: Chat, address_key: str) -> ev.Error | None:
    left = moderation_of(chat).ban_left(address_key, chat.clock())
    if left <= 0:
        return None
    chat.count("connections_banned")
    return ev.Error(code="banned", message=f"you are banned for {duration(left)} more")


# ---- housekeeping --------------------------------------------------------------------------
async def _tick(chat: Chat) -> None:
    state = moderation_of(chat)
    now = chat.clock()
    for table in (state.mutes, state.banned):
        for key in [k for k, until in table.items() if until <= now]:
            del table[key]
    for uid in [u for u, until in state.shadows.items() if until <= now]:
        del state.shadows[uid]
        chat.shadowed.discard(uid)
    for uid in [u for u, entry in state.bans.items() if entry.until <= now]:
        del state.bans[uid]
    for room, uid in [k for k, t in state.spoke.items() if now - t >= state.slow.get(k[0], 0)]:
        del state.spoke[(room, uid)]
    horizon = now - chat.config.retention_seconds
    while state.hidden and state.hidden[0][0] < horizon:
        chat.hidden.discard(state.hidden.popleft()[1])
    state.strikes.prune(now)


async def _ended(chat: Chat, session: Session) -> None:
    state = moderation_of(chat)
    state.mutes.pop(session.uid, None)
    state.shadows.pop(session.uid, None)
    state.told_probation.discard(session.uid)
    state.strikes.clear(session.uid)
    chat.shadowed.discard(session.uid)


ADMIT_CHECKS.append(_admit)
SAY_CHECKS.append(_may_say)
JOIN_CHECKS.append(_may_join)
SAID_HOOKS.append(_said)
TICK_HOOKS.append(_tick)
END_HOOKS.append(_ended)
