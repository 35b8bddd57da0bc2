"""One-to-one matching's state: what each node keeps, and the shared records every node
reads and writes through the broker (docs/one-to-one.md, "Several nodes"). The rule that
decides is pure, in match_rule.py; matching.py acts on it. The memory broker runs the same
code on one node.

Shared records are msgspec-encoded JSON (never strings parsed by hand): a listener's
place is a `Slot` (`["uid", k]`, itself the queue item), a chat a `PrivateChat`, a
person a `Profile`.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import TypeVar

import msgspec

from .chat import Chat
from .match_rule import Board, PrivateChat, Profile, Slot, loads_of
from .session import Session

# Shared through the broker (docs/one-to-one.md, "Several nodes"):
SEEKERS = "match:seekers"  # queue of seeker uids; priority 0 = flagged for crisis
SLOTS = "match:slots"  # queue of Slot items: a listener's free places (priority k)
CHATS = "match:chat"  # flags: room -> PrivateChat
LISTENING = "match:listening"  # flags: uid -> "1" while that listener is available
WHO = "match:who"  # flags: uid -> Profile, for nodes that do not hold that person
RESTING = "match:resting"  # flags: listener uid -> "1" while resting after a crisis chat
WAITED = "match:waited"  # flags: random key -> seconds a matched seeker waited
QUEUE_TTL = 3600.0  # a queue left alone this long is dropped (nothing stays for ever)
FLAG_TTL = 30.0  # a profile or chat not renewed (its node died) expires after this
WAITS_KEPT = 3600.0  # recent waits (for the estimate) are those of the last hour
RENEW_EVERY = 10.0  # seconds between renewals by the node that holds the person
MAX_MATCHES = 100  # matches made by one pump at most (bounded loop)
MAX_NOTE = 300  # characters of "what's on your mind"

T = TypeVar("T")
_profile = msgspec.json.Decoder(Profile)
_chat = msgspec.json.Decoder(PrivateChat)
_slot = msgspec.json.Decoder(Slot)
_encoder = msgspec.json.Encoder()


def encode(record: msgspec.Struct) -> str:
    return _encoder.encode(record).decode()


def slot_item(uid: str, k: int) -> str:
    return encode(Slot(uid, k))


def decode_slot(item: str) -> Slot | None:
    try:
        return _slot.decode(item)
    except msgspec.DecodeError:
        return None


class MatchState:
    """What one node keeps about one-to-one matching (the shared part is in the broker)."""

    def __init__(self) -> None:
        self.chats: dict[str, PrivateChat] = {}  # room -> chat with a side on this node
        # seeker uid -> (position, listeners on, estimate) last told them
        self.told: dict[str, tuple[int, int, float | None]] = {}
        self.waiting: set[str] = set()  # seekers on this node who are queued
        self.flagged: set[str] = set()  # ... of whom queued with crisis priority
        self.since: dict[str, float] = {}  # ... when they joined the queue (wall clock)
        self.notes: dict[str, str] = {}  # ... what is on their mind
        self.listening: set[str] = set()  # listeners on this node who are available
        self.order: list[str] = []  # the queue as this node last told it
        self.outlook: tuple[int, list[float]] = (0, [])  # listeners on, recent waits
        self.written: dict[str, Profile] = {}  # profiles last written for people here
        self.may_rate: set[str] = set()  # seekers here whose chat ended: "did this help?"
        self.renewed = -math.inf  # clock of the last renewal
        # (reporter uid, reported uid): filled through `Matching.on_report`.
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

    def unqueued(self, uid: str) -> None:
        """Out of the queue (matched, cancelled or gone): what was kept for waiting goes."""
        self.waiting.discard(uid)
        self.flagged.discard(uid)
        self.told.pop(uid, None)
        self.since.pop(uid, None)
        self.notes.pop(uid, None)


def profile_of(session: Session, state: MatchState) -> Profile:
    uid = session.uid
    return Profile(
        session.member(),
        tuple(sorted(session.ignored)),
        session.link is None,
        session.crisis,
        state.since.get(uid, 0.0),
        state.notes.get(uid, ""),
    )


# ---- reading and writing it ------------------------------------------------------------
async def write_profile(chat: Chat, state: MatchState, session: Session) -> None:
    profile = profile_of(session, state)
    await chat.broker.set_flag(WHO, session.uid, FLAG_TTL, encode(profile))
    state.written[session.uid] = profile


async def _decoded(chat: Chat, kind: str, decoder: msgspec.json.Decoder[T]) -> dict[str, T]:
    """Every shared flag of `kind`, decoded; one that does not decode (written by another
    version, or cut short) is passed over."""
    found = {}
    for key, raw in (await chat.broker.flags(kind)).items():
        try:
            found[key] = decoder.decode(raw)
        except msgspec.DecodeError:
            continue
    return found


async def profiles_of(chat: Chat) -> dict[str, Profile]:
    return await _decoded(chat, WHO, _profile)


def person(
    chat: Chat, state: MatchState, profiles: Mapping[str, Profile], uid: str
) -> Profile | None:
    """The person as matching sees them: from the session if held here, else shared."""
    session = chat.sessions.get(uid)
    return profile_of(session, state) if session is not None else profiles.get(uid)


async def shared_chats(chat: Chat) -> dict[str, PrivateChat]:
    return await _decoded(chat, CHATS, _chat)


async def record_chat(chat: Chat, private: PrivateChat) -> None:
    await chat.broker.set_flag(CHATS, private.room, FLAG_TTL, encode(private))


async def shared_chat(chat: Chat, room: str) -> PrivateChat | None:
    raw = await chat.broker.get_flag(CHATS, room)
    try:
        return _chat.decode(raw) if raw is not None else None
    except msgspec.DecodeError:
        return None


async def free_slots(chat: Chat) -> list[Slot]:
    """The listeners' free places in queue order; an item that is not one is dropped."""
    slots = []
    for item in await chat.broker.queued(SLOTS):
        slot = decode_slot(item)
        if slot is None:
            await chat.broker.dequeue(SLOTS, item)
        else:
            slots.append(slot)
    return slots


async def read_board(chat: Chat, state: MatchState, seekers: list[str]) -> Board:
    """One read of what the rule needs; entries of people whose profile is gone (their
    node died and never said so) are dropped from the queues on the way."""
    slots = await free_slots(chat)
    profiles = await profiles_of(chat)
    wanted = {*seekers, *(s.uid for s in slots)}
    people = {uid: p for uid in wanted if (p := person(chat, state, profiles, uid)) is not None}
    for uid in seekers:
        if uid not in people:
            await chat.broker.dequeue(SEEKERS, uid)
    for slot in slots:
        if slot.uid not in people:
            await chat.broker.dequeue(SLOTS, slot_item(slot.uid, slot.k))
    return Board(
        seekers=[uid for uid in seekers if uid in people],
        slots=[slot for slot in slots if slot.uid in people],
        people=people,
        loads=loads_of(await shared_chats(chat)),
        capacity=capacity(chat),
        apart=state.reported,
        resting=set(await chat.broker.flags(RESTING)),
    )


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
        await chat.broker.enqueue(SLOTS, slot_item(uid, k), QUEUE_TTL, priority=k)


async def withdraw_slots(chat: Chat, uid: str) -> None:
    for slot in await free_slots(chat):
        if slot.uid == uid:
            await chat.broker.dequeue(SLOTS, slot_item(slot.uid, slot.k))


async def remember_wait(chat: Chat, seconds: float) -> None:
    """A matched seeker's wait, kept an hour for others' estimates (no one's uid with it)."""
    key = secrets.token_hex(6)
    await chat.broker.set_flag(WAITED, key, WAITS_KEPT, f"{max(0.0, seconds):.1f}")


async def outlook(chat: Chat) -> tuple[int, list[float]]:
    """Listeners on now, and the waits of the last hour."""
    listeners = len(await chat.broker.flags(LISTENING))
    waits = []
    for value in (await chat.broker.flags(WAITED)).values():
        try:
            waits.append(float(value))
        except ValueError:
            continue
    return listeners, waits
