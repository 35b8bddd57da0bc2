"""Moderation: what lets a moderator stop a troll within seconds.

Moderators (role `mod`) kick, mute, shadow-mute, ban (by session and by the keyed hash
of the network address), unban, announce, put a room in slow mode and lock it. This
module also holds the state flood.py works on (automatic mutes, probation):
`Moderation.on_probation(session, now)` tells flood control who is still new (a smaller
budget in group rooms only; never less access to a listener).
Reports live in reports.py, crisis support in safety.py.

The state is shared by every node through the broker's flags, each with its expiry as
a TTL, and read from a local cache kept fresh by signals (modstate.py). A moderator on
one node can act on a person held by another: people are found by name in the rooms'
member lists, and the node holding them carries out a kick or ban. Nothing here is
written to disk.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

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
from .commands import MAX_MINUTES
from .handlers import draft
from .modstate import (
    ACT,
    RESYNC,
    ROOM_TTL,
    BanEntry,
    Moderation,
    act,
    hide,
    hide_everywhere,
    moderation_of,
    resync,
    share,
    unshare,
)
from .names import name_key
from .ports import BrokerUnavailable
from .rooms import normalise_room, valid_room
from .session import Link, Session
from .text import clean

log = logging.getLogger("chatsupport.moderation")

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


__all__ = ["BanEntry", "Moderation", "duration", "moderation_of"]


@dataclass(frozen=True, slots=True)
class Person:
    """Whom a moderator acts on: held by this node (`session`) or by another one."""

    uid: str
    name: str
    role: str | None
    session: Session | None


# ---- helpers -------------------------------------------------------------------------------
async def _target(chat: Chat, link: Link, uid: str | None, name: str | None) -> Person:
    target = await find_anywhere(chat, uid, name)
    if target.uid == link.session.uid:
        raise Refused("bad_request", "you cannot do that to yourself")
    if target.role == "mod":
        raise Refused("forbidden", "moderators cannot do that to each other")
    return target


async def find_anywhere(chat: Chat, uid: str | None, name: str | None) -> Person:
    """Someone on this node, else on any node: by uid or name in the rooms' member lists."""
    try:
        found = staff.find_person(chat, uid, name)
        return Person(found.uid, found.name, found.role, found)
    except Refused:
        if not (uid or name):
            raise
        key = name_key(name) if name else None
        for info in await chat.broker.room_counts():
            for member in await chat.broker.members(info.name):
                if member.uid == uid or (key and name_key(member.name) == key):
                    return Person(member.uid, member.name, member.role, None)
        raise


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
    target = await _target(chat, link, request.uid, request.name)
    reason = clean(request.reason, keep_newlines=False)[:200]
    text = "a moderator disconnected you" + (f": {reason}" if reason else "")
    if target.session is not None:
        await disconnect(chat, target.session, "kicked", text)
    else:
        await act(chat, target.uid, "kicked", text)
    chat.count("mod_kicks")
    log.info("kick by=%s target=%s", link.session.uid, target.uid)
    _done(chat, link, request, "kick", f"{target.name} was disconnected", target.name)


@handles(rq.Mute)
async def mute(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Mute)
    staff.require_mod(link)
    target = await _target(chat, link, request.uid, request.name)
    seconds = _seconds(request.minutes)
    await share(chat, "mute", target.uid, None, seconds)
    text = f"a moderator muted you for {duration(seconds)}: you can read but not write"
    await _tell(chat, target, ev.Notice(kind="mute", text=text))
    chat.count("mod_mutes")
    log.info("mute by=%s target=%s", link.session.uid, target.uid)
    text = f"{target.name} is muted for {duration(seconds)}"
    _done(chat, link, request, "mute", text, target.name)


async def _tell(chat: Chat, target: Person, notice: ev.Notice) -> None:
    if target.session is not None:
        chat.direct(target.session, notice)
    else:
        await chat.broker.direct(target.uid, notice)


@handles(rq.Shadow)
async def shadow(chat: Chat, link: Link, request: rq.Request) -> None:
    """Their messages reach only themselves; nothing they receive tells them so."""
    assert isinstance(request, rq.Shadow)
    staff.require_mod(link)
    target = await _target(chat, link, request.uid, request.name)
    seconds = _seconds(request.minutes)
    await share(chat, "shadow", target.uid, None, seconds)
    chat.count("mod_shadows")
    log.info("shadow by=%s target=%s", link.session.uid, target.uid)
    text = f"{target.name} is shadow-muted for {duration(seconds)}: only they see their messages"
    _done(chat, link, request, "shadow", text, target.name)


@handles(rq.Ban)
async def ban(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Ban)
    staff.require_mod(link)
    target = await _target(chat, link, request.uid, request.name)
    seconds = _seconds(request.minutes)
    text = f"a moderator banned you for {duration(seconds)}"
    if target.session is not None:
        await ban_here(chat, target.session, seconds)
        await disconnect(chat, target.session, "banned", text)
    else:  # their node knows their address key: it bans that too, and ends them
        await share(chat, "ban", target.uid, _ban_data(target.name, []), seconds)
        await act(chat, target.uid, "banned", text, seconds)
    chat.count("mod_bans")
    log.info("ban by=%s target=%s", link.session.uid, target.uid)
    text = f"{target.name} is banned for {duration(seconds)}"
    _done(chat, link, request, "ban", text, target.name)


def _ban_data(name: str, keys: list[str]) -> dict[str, Any]:
    return {"name": name, "name_key": name_key(name), "keys": keys}


def _keys_of(session: Session) -> list[str]:
    keys = {session.address_key} | ({session.link.address_key} if session.link else set())
    return sorted(k for k in keys if k)


async def ban_here(
    chat: Chat, session: Session, seconds: float, keys: list[str] | None = None
) -> None:
    """Ban a person this node holds: their uid and their address keys, everywhere."""
    keys = _keys_of(session) if keys is None else keys
    await share(chat, "ban", session.uid, _ban_data(session.name, keys), seconds)
    state = moderation_of(chat)
    for key in keys:
        left = max(seconds, state.ban_left(key, chat.clock()))  # a longer ban stays
        await share(chat, "banned", key, None, left)


def _acted(chat: Chat, session: Session, order: dict[str, Any]) -> None:
    """Another node's moderator kicked or banned this person, held here: end them now
    (their close is not resumable); the address ban reaches the broker on the next tick."""
    reason, text = str(order.get("reason", "kicked")), str(order.get("text", ""))
    seconds = float(order.get("seconds") or 0.0)
    state = moderation_of(chat)
    if reason == "banned" and seconds > 0:
        keys, until = _keys_of(session), chat.clock() + seconds
        for key in keys:  # refused here at once, elsewhere after the tick
            state.banned[key] = max(state.banned.get(key, 0.0), until)

        async def write_ban() -> None:
            await ban_here(chat, session, seconds, keys)

        state.later.append(write_ban)
    link = session.link
    if link is None:  # away, waiting to resume: ended on the tick, if still held here

        async def end() -> None:
            if chat.sessions.get(session.uid) is session:
                await chat.end_session(session)

        state.later.append(end)
        return
    chat.send(link, ev.Notice(kind=reason, text=text))
    chat.send(link, ev.Bye(reason=reason))
    link.resumable = False
    link.sink.close(reason)


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
    entry = await lift_ban(chat, banned_uid) if banned_uid else None
    if entry is not None:
        lifted.append("ban")
        who = entry.name
    person = await _person_or_none(chat, request.uid, request.name)
    if person is not None:
        who = person.name
        if person.uid in state.mutes:
            await unshare(chat, "mute", person.uid)
            lifted.append("mute")
            await _tell(chat, person, ev.Notice(kind="unmute", text="you can write again"))
        if person.uid in state.shadows:
            await unshare(chat, "shadow", person.uid)
            lifted.append("shadow-mute")
    if not lifted:
        raise Refused("bad_request", f"{who} is not banned or muted")
    chat.count("mod_unbans")
    log.info("unban by=%s lifted=%s", link.session.uid, ",".join(lifted))
    _done(chat, link, request, "unban", f"lifted for {who}: {', '.join(lifted)}", who)


async def lift_ban(chat: Chat, uid: str) -> BanEntry | None:
    """End the ban of `uid` everywhere; an address key another ban shares stays banned."""
    state = moderation_of(chat)
    entry = state.bans.get(uid)
    if entry is None:
        return None
    await unshare(chat, "ban", uid)
    now = chat.clock()
    for key in entry.address_keys:
        others = [b.until for u, b in state.bans.items() if key in b.address_keys]
        if others:
            await share(chat, "banned", key, None, max(others) - now)
        else:
            await unshare(chat, "banned", key)
    return entry


async def _person_or_none(chat: Chat, uid: str | None, name: str | None) -> Person | None:
    try:
        return await find_anywhere(chat, uid, name)
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
    if seconds == 0:
        await unshare(chat, "slow", room)
        text = f"slow mode is off in #{room}"
    else:
        await share(chat, "slow", room, seconds, ROOM_TTL)
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
        allowed = sorted({m.uid for m in await chat.broker.members(room)})
        await share(chat, "lock", room, allowed, ROOM_TTL)
        text = f"#{room} is locked for now: only people already here can speak"
    else:
        if room not in state.locked:
            raise Refused("bad_request", f"#{room} is not locked")
        await unshare(chat, "lock", room)
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
    if session.uid in chat.shadowed:  # every node's replay and reports must skip it too
        hide(chat, message.room, message.id)
        with contextlib.suppress(BrokerUnavailable):
            await hide_everywhere(chat, message.room, message.id)


def _admit(chat: Chat, address_key: str) -> ev.Error | None:
    left = moderation_of(chat).ban_left(address_key, chat.clock())
    if left <= 0:
        return None
    chat.count("connections_banned")
    return ev.Error(code="banned", message=f"you are banned for {duration(left)} more")


# ---- housekeeping --------------------------------------------------------------------------
async def _catch_up(chat: Chat) -> None:
    """What the node-to-node channel asked of this node, then the periodic resync; while
    the broker is away, both wait for a later tick (the cache holds meanwhile)."""
    state = moderation_of(chat)
    later, state.later = state.later, []
    for index, work in enumerate(later):
        try:
            await work()
        except BrokerUnavailable:
            state.later[:0] = later[index:]
            return
    if state.synced is None or chat.clock() - state.synced >= RESYNC:
        with contextlib.suppress(BrokerUnavailable):
            await resync(chat)


async def _tick(chat: Chat) -> None:
    state = moderation_of(chat)
    await _catch_up(chat)
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
ACT.append(_acted)
