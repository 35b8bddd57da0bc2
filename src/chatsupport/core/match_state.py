"""One-to-one matching's state: what each node keeps, and what all nodes share through the
broker (docs/one-to-one.md, "Several nodes"). The rules are in matching.py; the memory
broker runs the same code on one node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from . import events as ev
from .chat import Chat
from .session import Session

# Shared through the broker (docs/one-to-one.md, "Several nodes"):
SEEKERS = "match:seekers"  # queue of seeker uids; priority 0 = flagged for crisis
SLOTS = "match:slots"  # queue of "uid k": listener uid can take a chat while holding k
CHATS = "match:chat"  # flags: room -> "seeker_uid listener_uid"
LISTENING = "match:listening"  # flags: uid -> "1" while that listener is available
WHO = "match:who"  # flags: uid -> Profile JSON, for nodes that do not hold that person
QUEUE_TTL = 3600.0  # a queue left alone this long is dropped (nothing stays for ever)
FLAG_TTL = 30.0  # a profile or chat not renewed (its node died) expires after this
RENEW_EVERY = 10.0  # seconds between renewals by the node that holds the person
MAX_MATCHES = 100  # matches made by one pump at most (bounded loop)


class Profile(msgspec.Struct, frozen=True):
    """What a node that does not hold a person needs to match them."""

    member: ev.Member
    ignored: tuple[str, ...] = ()
    away: bool = False
    crisis: bool = False


_profile_decoder = msgspec.json.Decoder(Profile)


def profile_of(session: Session) -> Profile:
    ignored = tuple(sorted(session.ignored))
    return Profile(session.member(), ignored, session.link is None, session.crisis)


@dataclass(slots=True)
class PrivateChat:
    room: str
    seeker: str  # uid
    listener: str  # uid


class MatchState:
    """What one node keeps about one-to-one matching (the shared part is in the broker)."""

    def __init__(self) -> None:
        self.chats: dict[str, PrivateChat] = {}  # room -> chat with a side on this node
        self.told: dict[str, int] = {}  # seeker uid -> last position sent to them
        self.waiting: set[str] = set()  # seekers on this node who are queued
        self.flagged: set[str] = set()  # ... of whom queued with crisis priority
        self.listening: set[str] = set()  # listeners on this node who are available
        self.order: list[str] = []  # the queue as this node last told it
        self.written: dict[str, Profile] = {}  # profiles last written for people here
        self.renewed = -math.inf  # clock of the last renewal
        # (reporter uid, reported uid): filled by the safety work through `mark_reported`.
        self.reported: set[tuple[str, str]] = set()

    def chats_of(self, uid: str) -> list[PrivateChat]:
        return [c for c in self.chats.values() if uid in (c.seeker, c.listener)]

    def seeker_chat(self, uid: str) -> PrivateChat | None:
        return next((c for c in self.chats.values() if c.seeker == uid), None)

    def people(self, here: Mapping[str, object]) -> set[str]:
        """Everyone on this node this state holds on to (for the housekeeping sweep)."""
        held = self.listening | self.waiting | set(self.told)
        for chat in self.chats.values():
            held.update(uid for uid in (chat.seeker, chat.listener) if uid in here)
        return held


# ---- reading and writing it ------------------------------------------------------------
async def write_profile(chat: Chat, state: MatchState, session: Session) -> None:
    profile = profile_of(session)
    await chat.broker.set_flag(WHO, session.uid, FLAG_TTL, msgspec.json.encode(profile).decode())
    state.written[session.uid] = profile


async def profiles_of(chat: Chat) -> dict[str, Profile]:
    found = {}
    for uid, raw in (await chat.broker.flags(WHO)).items():
        try:
            found[uid] = _profile_decoder.decode(raw)
        except msgspec.DecodeError:
            continue
    return found


def person(chat: Chat, profiles: dict[str, Profile], uid: str) -> Profile | None:
    """The person as matching sees them: from the session if held here, else shared."""
    session = chat.sessions.get(uid)
    return profile_of(session) if session is not None else profiles.get(uid)


async def shared_chats(chat: Chat) -> dict[str, PrivateChat]:
    chats = {}
    for room, pair in (await chat.broker.flags(CHATS)).items():
        seeker, _, listener = pair.partition(" ")
        chats[room] = PrivateChat(room, seeker, listener)
    return chats


def loads_of(chats: dict[str, PrivateChat]) -> dict[str, int]:
    loads: dict[str, int] = {}
    for private in chats.values():
        loads[private.listener] = loads.get(private.listener, 0) + 1
    return loads


def slot_of(item: str) -> tuple[str, int]:
    uid, _, k = item.partition(" ")
    return uid, int(k) if k.isdigit() else 0


def capacity(chat: Chat) -> int:
    return max(1, chat.config.listener_capacity)


async def offer_slots(chat: Chat, uid: str) -> None:
    """Queue the listener's free places (one per chat they could still take), if listening.

    A place `k` (taken while holding k chats) has priority k: least busy first, then the
    one free longest (arrival order)."""
    if await chat.broker.get_flag(LISTENING, uid) is None:
        return
    load = loads_of(await shared_chats(chat)).get(uid, 0)
    for k in range(load, capacity(chat)):
        await chat.broker.enqueue(SLOTS, f"{uid} {k}", QUEUE_TTL, priority=k)


async def withdraw_slots(chat: Chat, uid: str) -> None:
    for item in await chat.broker.queued(SLOTS):
        if slot_of(item)[0] == uid:
            await chat.broker.dequeue(SLOTS, item)
