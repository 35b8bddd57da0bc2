"""Moderation: what lets a moderator stop a troll within seconds.

Moderators (role `mod`) kick, mute, shadow-mute, ban (by session and by the keyed hash
of the network address), unban, announce, put a room in slow mode and lock it. The
`Moderation` feature owns that state and the chat's visibility policy (a shadow-muted
person's messages reach only themselves); flood control (flood.py) mutes through
`Moderation.mute_everywhere`. Reports live in reports.py, crisis support in safety.py.

The state is shared by every node through the broker's flags, each with its expiry as
a TTL, and read from a local cache kept fresh by signals (modstate.py). A moderator on
one node can act on a person held by another: people are found by name in the rooms'
member lists, and the node holding them carries out a kick or ban. Nothing here is
written to disk. An address ban is shared under the period keys of the person's address
key (`AddressPeriods`, keys.py), never under the key this node holds in memory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import msgspec

from ..config import Config
from . import events as ev
from . import requests as rq
from . import staff
from .chat import Chat, Refused
from .commands import MAX_MINUTES
from .feature import Channel, Feature, Visibility, handles
from .handlers import draft
from .modstate import CONTROL, RESYNC, ROOM_TTL, BanEntry, ModState, Shared, decode
from .names import name_key
from .people import Person, find_anywhere
from .ports import AddressPeriods, BrokerUnavailable, Unrotated
from .rooms import is_private, normalise_room, valid_room
from .session import Link, Session
from .text import clean
from .vocabulary import BanScope, Ending, NoticeKind, as_ending

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


# ---- helpers -------------------------------------------------------------------------------
async def _target(chat: Chat, link: Link, uid: str | None, name: str | None) -> Person:
    target = await find_anywhere(chat, uid, name)
    if target.uid == link.session.uid:
        raise Refused("bad_request", "you cannot do that to yourself")
    if target.role == "mod":
        raise Refused("forbidden", "moderators cannot do that to each other")
    return target


async def _person_or_none(chat: Chat, uid: str | None, name: str | None) -> Person | None:
    try:
        return await find_anywhere(chat, uid, name)
    except Refused:
        return None


def _seconds(minutes: float) -> float:
    if not 0 < minutes <= MAX_MINUTES:
        raise Refused("bad_request", f"minutes must be between 0 and {MAX_MINUTES}")
    return minutes * 60.0


def _room(raw: str) -> str:
    room = normalise_room(raw)
    if not valid_room(room):
        raise Refused("bad_request", "room names are 1-32 of a-z, 0-9 and -")
    return room


async def disconnect(chat: Chat, target: Session, reason: Ending, text: str) -> None:
    """Tell them why, say goodbye, and end the session for good (no resume)."""
    link = target.link
    if link is None:  # between connections, waiting to resume: just end it
        await chat.end_session(target)
        return
    chat.send(link, _farewell(chat, reason, text))
    chat.send(link, ev.Bye(reason=reason))
    link.sink.close(reason)
    await chat.close(link, reason, resumable=False)


def _farewell(chat: Chat, reason: Ending, text: str) -> ev.Notice:
    """Why they are removed; a banned person also gets the help lines, open to them still."""
    lines = chat.helplines() if reason == "banned" else None
    return ev.Notice(kind=reason, text=text, resources=lines)


def _done(
    chat: Chat, link: Link, request: rq.Request, kind: NoticeKind, text: str, name: str
) -> None:
    chat.reply(link, ev.Notice(kind=kind, text=text, name=name), request)


async def _tell(chat: Chat, target: Person, notice: ev.Notice) -> None:
    if target.session is not None:
        chat.direct(target.session, notice)
    else:
        await chat.broker.direct(target.uid, notice)


async def _tell_room(chat: Chat, link: Link, room: str, kind: NoticeKind, text: str) -> None:
    # The moderator is the sender: they get the reply, not a second copy.
    await chat.broker.signal(room, ev.Notice(kind=kind, text=text), link.session.uid)


def _ban_data(name: str, keys: list[str], clients: list[str]) -> dict[str, Any]:
    return {"name": name, "name_key": name_key(name), "keys": keys, "clients": clients}


def _keys_of(session: Session) -> list[str]:
    """The keyed hashes of the networks `session` came from."""
    keys = {session.address_key} | ({session.link.address_key} if session.link else set())
    return sorted(k for k in keys if k)


def _clients_of(session: Session) -> list[str]:
    """The keyed hashes of the ids their clients held (a page's tab, a terminal client)."""
    keys = {session.client_key} | ({session.link.client_key} if session.link else set())
    return sorted(k for k in keys if k)


def _network_seconds(config: Config, scope: BanScope | None, seconds: float) -> float:
    """How long a ban of `seconds` also holds the person's network (0: not at all)."""
    if (scope or config.ban_scope) != "address":
        return 0.0
    longest = config.address_ban_max
    return seconds if longest is None else min(seconds, longest)


def ban_notice(seconds: float, network: float) -> str:
    """What a banned person is told: why, for how long, and that help lines stay open."""
    text = f"a moderator banned you from the chat for {duration(seconds)}"
    if network > 0:
        text += (
            f", and everyone on your network for {duration(network)} (a school, an office or "
            "a mobile network can share one address)"
        )
    return text + ". If you need someone to talk to now, help lines stay open to you"


class Moderation(Feature):
    """Moderators' actions, and what a mute, slow mode, lock, ban or shadow-mute means."""

    def __init__(self, periods: AddressPeriods | None = None) -> None:
        self.state = ModState()
        self.periods = periods or Unrotated()

    def bind(self, chat: Chat) -> None:
        super().bind(chat)
        self.shared = Shared(chat, self.state)

    def visibility(self) -> Visibility:
        return self.state

    def channels(self) -> Mapping[str, Channel]:
        return {CONTROL: self._on_control}

    # ---- for other features ------------------------------------------------------------------
    def muted_for(self, uid: str, now: float) -> float:
        return self.state.muted_for(uid, now)

    async def mute_everywhere(self, uid: str, seconds: float) -> None:
        """Mute `uid` on every node (they may resume elsewhere); while the broker is away,
        at least on this one."""
        try:
            await self.shared.share("mute", uid, None, seconds)
        except BrokerUnavailable:
            self.state.mutes[uid] = self.chat.clock() + seconds

    # ---- moderator actions ---------------------------------------------------------------------
    @handles(rq.Kick, role="mod")
    async def kick(self, link: Link, request: rq.Kick) -> None:
        chat = self.chat
        target = await _target(chat, link, request.uid, request.name)
        reason = clean(request.reason, keep_newlines=False)[:200]
        text = "a moderator disconnected you" + (f": {reason}" if reason else "")
        if target.session is not None:
            await disconnect(chat, target.session, "kicked", text)
        else:
            await self.shared.act(target.uid, "kicked", text)
        chat.count("mod_kicks")
        log.info("kick by=%s target=%s", link.session.uid, target.uid)
        _done(chat, link, request, "kick", f"{target.name} was disconnected", target.name)

    @handles(rq.Mute, role="mod")
    async def mute(self, link: Link, request: rq.Mute) -> None:
        target, seconds = await self._restrict(link, request, "mute")
        text = f"a moderator muted you for {duration(seconds)}: you can read but not write"
        await _tell(self.chat, target, ev.Notice(kind="mute", text=text))
        text = f"{target.name} is muted for {duration(seconds)}"
        _done(self.chat, link, request, "mute", text, target.name)

    @handles(rq.Shadow, role="mod")
    async def shadow(self, link: Link, request: rq.Shadow) -> None:
        """Their messages reach only themselves; nothing they receive tells them so."""
        target, seconds = await self._restrict(link, request, "shadow")
        text = f"{target.name} is shadow-muted for {duration(seconds)}: "
        text += "only they see their messages"
        _done(self.chat, link, request, "shadow", text, target.name)

    async def _restrict(
        self, link: Link, request: rq.Mute | rq.Shadow, kind: str
    ) -> tuple[Person, float]:
        """A mute or shadow-mute of the person named, on every node, for the minutes given."""
        target = await _target(self.chat, link, request.uid, request.name)
        seconds = _seconds(request.minutes)
        await self.shared.share(kind, target.uid, None, seconds)
        self.chat.count(f"mod_{kind}s")
        log.info("%s by=%s target=%s", kind, link.session.uid, target.uid)
        return target, seconds

    @handles(rq.Ban, role="mod")
    async def ban(self, link: Link, request: rq.Ban) -> None:
        """A ban covers the person (their session and the id their client holds) and, with
        scope "address" (the contract's default, `--ban-scope`), the keyed hash of their
        network, for at most `address_ban_max` if set: everyone else behind it is shut out
        too. Scope "person" spares a shared network (a school, an office, a carrier's NAT)."""
        chat = self.chat
        target = await _target(chat, link, request.uid, request.name)
        seconds = _seconds(request.minutes)
        network = _network_seconds(chat.config, request.scope, seconds)
        text = ban_notice(seconds, network)
        if target.session is not None:
            await self.ban_here(target.session, seconds, network)
            await disconnect(chat, target.session, "banned", text)
        else:  # their node knows their keys: it bans those too, and ends them
            await self.shared.share("ban", target.uid, _ban_data(target.name, [], []), seconds)
            await self.shared.act(target.uid, "banned", text, seconds, network)
        chat.count("mod_bans")
        if network:
            chat.count("mod_address_bans")
        log.info("ban by=%s target=%s network=%s", link.session.uid, target.uid, bool(network))
        text = f"{target.name} is banned for {duration(seconds)}"
        if network:
            text += f", their network for {duration(network)}"
        _done(chat, link, request, "ban", text, target.name)

    async def ban_here(
        self,
        session: Session,
        seconds: float,
        network: float = 0.0,
        roots: list[str] | None = None,
        clients: list[str] | None = None,
    ) -> None:
        """Ban a person this node holds, everywhere: their uid and their clients' ids for
        `seconds`, and their networks for `network` seconds (0: not their network). Each
        root key is shared under every period key the ban spans, never as it is."""
        roots = (_keys_of(session) if roots is None else roots) if network > 0 else []
        clients = _clients_of(session) if clients is None else clients
        nets, blocks = self._spans(roots, network), self._spans(clients, seconds)
        shared_nets, shared_blocks = sorted({k for k, _ in nets}), sorted({k for k, _ in blocks})
        data = _ban_data(session.name, shared_nets, shared_blocks)
        await self.shared.share("ban", session.uid, data, seconds)
        now, state = self.chat.clock(), self.state
        for kind, spans, left_of in (
            ("blocked", blocks, state.block_left),
            ("banned", nets, state.ban_left),
        ):
            for key, needed in spans:
                left = max(needed, left_of(key, now))  # a longer one stays
                await self.shared.share(kind, key, None, left)

    def _spans(self, roots: list[str], seconds: float) -> list[tuple[str, float]]:
        """The period keys `roots` are shared under for a ban of `seconds` (keys.py)."""
        if seconds <= 0:
            return []
        return [span for root in roots for span in self.periods.spanning(root, seconds)]

    @handles(rq.Unban, role="mod")
    async def unban(self, link: Link, request: rq.Unban) -> None:
        """Lift whatever holds the person: a ban, a mute, a shadow-mute."""
        chat, state = self.chat, self.state
        who = request.uid or request.name or ""
        lifted: list[str] = []
        key = name_key(request.name) if request.name else None
        banned = request.uid or next((u for u, b in state.bans.items() if b.name_key == key), None)
        entry = await self.lift_ban(banned) if banned else None
        if entry is not None:
            lifted.append("ban")
            who = entry.name
        person = await _person_or_none(chat, request.uid, request.name)
        if person is not None:
            who = person.name
            if person.uid in state.mutes:
                await self.shared.unshare("mute", person.uid)
                lifted.append("mute")
                await _tell(chat, person, ev.Notice(kind="unmute", text="you can write again"))
            if person.uid in state.shadows:
                await self.shared.unshare("shadow", person.uid)
                lifted.append("shadow-mute")
        if not lifted:
            raise Refused("bad_request", f"{who} is not banned or muted")
        chat.count("mod_unbans")
        log.info("unban by=%s lifted=%s", link.session.uid, ",".join(lifted))
        _done(chat, link, request, "unban", f"lifted for {who}: {', '.join(lifted)}", who)

    async def lift_ban(self, uid: str) -> BanEntry | None:
        """End the ban of `uid` everywhere; an address key another ban shares stays banned."""
        entry = self.state.bans.get(uid)
        if entry is None:
            return None
        await self.shared.unshare("ban", uid)
        now, bans = self.chat.clock(), self.state.bans.values()
        for kind, keys in (("banned", entry.address_keys), ("blocked", entry.client_keys)):
            for key in keys:
                held = [b.until for b in bans if key in b.address_keys | b.client_keys]
                if not held:
                    await self.shared.unshare(kind, key)
                    continue
                left = max(held) - now  # another ban holds it: as long as that one
                if kind == "banned":  # a network never longer than it was (address_ban_max)
                    left = min(left, self.state.ban_left(key, now))
                await self.shared.share(kind, key, None, left)
        return entry

    @handles(rq.Announce, role="mod")
    async def announce(self, link: Link, request: rq.Announce) -> None:
        """A message of kind `announce` in every room (`***` on the text interface)."""
        chat = self.chat
        text = clean(request.text)
        if not text:
            raise Refused("bad_request", "the announcement is empty")
        if len(text) > chat.config.max_text:
            raise Refused("too_long", f"messages are at most {chat.config.max_text} characters")
        session = link.session
        if request.room:  # addressed: that room, a private one-to-one room included
            rooms = [_room(request.room)]
        else:  # everyone's rooms, not the private one-to-one talks
            rooms = [r.name for r in await chat.broker.room_counts() if not is_private(r.name)]
        for room in rooms:
            await chat.broker.publish(draft(session, room, "announce", text), None)
        chat.count("mod_announcements")
        count = len(rooms)
        _done(chat, link, request, "announced", f"announced in {count} room(s)", session.name)

    @handles(rq.Slow, role="mod")
    async def slow(self, link: Link, request: rq.Slow) -> None:
        room = _room(request.room)
        seconds = request.seconds
        if not 0 <= seconds <= MAX_SLOW_SECONDS:
            most = f"{MAX_SLOW_SECONDS:g}"
            raise Refused("bad_request", f"seconds must be between 0 (off) and {most}")
        if seconds == 0:
            await self.shared.unshare("slow", room)
            text = f"slow mode is off in #{room}"
        else:
            await self.shared.share("slow", room, seconds, ROOM_TTL)
            text = f"#{room} is in slow mode: one message every {duration(seconds)} each"
        await _tell_room(self.chat, link, room, "slow", text)
        _done(self.chat, link, request, "slow", text, room)

    @handles(rq.Lock, rq.Unlock, role="mod")
    async def lock(self, link: Link, request: rq.Lock | rq.Unlock) -> None:
        chat = self.chat
        room = _room(request.room)
        if isinstance(request, rq.Lock):
            allowed = sorted({m.uid for m in await chat.broker.members(room)})
            await self.shared.share("lock", room, allowed, ROOM_TTL)
            text = f"#{room} is locked for now: only people already here can speak"
        else:
            if room not in self.state.locked:
                raise Refused("bad_request", f"#{room} is not locked")
            await self.shared.unshare("lock", room)
            text = f"#{room} is open again"
        kind: NoticeKind = "lock" if isinstance(request, rq.Lock) else "unlock"
        await _tell_room(chat, link, room, kind, text)
        _done(chat, link, request, kind, text, room)

    # ---- hooks: what a mute, slow mode, lock, ban or shadow-mute means -----------------------
    def admit(self, address_key: str) -> ev.Error | None:
        """Refuse a banned client (its id) or network, saying why and for how long (the
        key's period keys are what bans are shared under); the Chat adds the help lines."""
        now, state, keys = self.chat.clock(), self.state, self.periods.current(address_key)
        person = max(state.block_left(key, now) for key in keys)
        network = max(state.ban_left(key, now) for key in keys)
        if person <= 0 and network <= 0:
            return None
        self.chat.count("connections_banned")
        if person > 0:
            text = f"a moderator banned you from the chat; {duration(person)} to go"
        else:
            text = (
                f"a moderator closed the chat to your network for {duration(network)} more, "
                "because of someone using it (a school, an office or a mobile network can "
                "share one address); we are sorry if that was not you"
            )
        return ev.Error(code="banned", message=f"{text}. Help lines are open to you meanwhile")

    def check_say(self, session: Session, room: str, text: str) -> None:
        state, now = self.state, self.chat.clock()
        left = state.muted_for(session.uid, now)
        if left > 0:
            raise Refused("muted", f"you are muted for {duration(left)} more; you can still read")
        if staff.is_staff(session):
            return
        allowed = state.locked.get(room)
        if allowed is not None and session.uid not in allowed:
            text = f"#{room} is locked for now: only people already there speak"
            raise Refused("forbidden", text)
        interval = state.slow.get(room)
        last = state.spoke.get((room, session.uid))
        if interval and last is not None and now - last < interval:
            wait = duration(interval - (now - last))
            raise Refused("rate_limited", f"#{room} is in slow mode: wait {wait} before writing")

    def check_join(self, session: Session, room: str) -> None:
        allowed = self.state.locked.get(room)
        if allowed is not None and session.uid not in allowed and not staff.is_staff(session):
            raise Refused("forbidden", f"#{room} is locked for now; try again later")

    async def after_say(self, session: Session, message: ev.Message) -> None:
        if message.room in self.state.slow:
            self.state.spoke[(message.room, session.uid)] = self.chat.clock()
        if self.state.silenced(session.uid):  # every node's replay and reports skip it too
            with contextlib.suppress(BrokerUnavailable):
                await self.shared.hide_everywhere(message.room, message.id)

    async def on_tick(self) -> None:
        await self._catch_up()
        now = self.chat.clock()
        self.state.expire(now, now - self.chat.config.retention_seconds)

    async def on_end(self, session: Session) -> None:
        self.state.mutes.pop(session.uid, None)
        self.state.shadows.pop(session.uid, None)

    async def _catch_up(self) -> None:
        """What the node-to-node channel asked of this node, then the periodic resync;
        while the broker is away, both wait for a later tick (the cache holds meanwhile)."""
        state = self.state
        later, state.later = state.later, []
        for index, work in enumerate(later):
            try:
                await work()
            except BrokerUnavailable:
                state.later[:0] = later[index:]
                return
        if state.synced is None or self.chat.clock() - state.synced >= RESYNC:
            with contextlib.suppress(BrokerUnavailable):
                await self.shared.resync()

    # ---- the node-to-node channel --------------------------------------------------------------
    def _on_control(self, event: ev.Event) -> None:
        if not isinstance(event, ev.Control):
            return
        if event.kind == "hide":
            if event.value is not None and event.value.isdigit():
                self.state.hide(event.key, int(event.value), self.chat.clock())
            return
        if event.kind != "act":
            self.shared.apply(event.kind, event.key, event.value)
            return
        session = self.chat.sessions.get(event.key)
        if session is None or event.value is None:
            return  # held by another node (or nobody): theirs to act on
        try:
            order = decode.decode(event.value)
        except msgspec.DecodeError:
            return
        self._acted(session, order)

    def _acted(self, session: Session, order: dict[str, Any]) -> None:
        """Another node's moderator kicked or banned this person, held here: end them now
        (their close is not resumable); the address ban reaches the broker on the next tick."""
        chat, state = self.chat, self.state
        reason, text = as_ending(str(order.get("reason"))), str(order.get("text", ""))
        seconds = float(order.get("seconds") or 0.0)
        network = float(order.get("address") or 0.0)
        if reason == "banned" and seconds > 0:
            now = chat.clock()
            keys, clients = _keys_of(session) if network > 0 else [], _clients_of(session)
            for table, roots, until in (
                (state.banned, keys, network),
                (state.blocked, clients, seconds),
            ):
                for key in (k for root in roots for k in self.periods.current(root)):
                    table[key] = max(table.get(key, 0.0), now + until)  # here at once

            async def write_ban() -> None:
                await self.ban_here(session, seconds, network, keys, clients)

            state.later.append(write_ban)
        link = session.link
        if link is None:  # away, waiting to resume: ended on the tick, if still held here

            async def end() -> None:
                if chat.sessions.get(session.uid) is session:
                    await chat.end_session(session)

            state.later.append(end)
            return
        chat.send(link, _farewell(chat, reason, text))
        chat.send(link, ev.Bye(reason=reason))
        link.resumable = False
        link.sink.close(reason)
