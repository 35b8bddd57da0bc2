"""The matching rule, pure: given what the shared queue holds, who is matched with whom.

No broker, no clock, no I/O: `choose(board)` reads a `Board` (the queue in order, the
listeners' free places, what is known of each person) and returns the next `Pair` or
None. match_state.py reads and writes the shared records these types describe; matching.py
acts on the answer. The rules (docs/one-to-one.md, "Fairness"):

- Seekers in queue order (the broker keeps crisis-flagged ones first); one who is away
  keeps their place but is passed over until they come back.
- A listener's places in queue order: least busy first, then free longest.
- A listener never takes a seeker they ignored or reported, or who ignored them, nor
  themselves, nor more chats than the capacity, nor any chat while away or resting after
  a crisis-flagged conversation.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from . import events as ev


class Profile(msgspec.Struct, frozen=True):
    """What any node needs to match a person (shared for those held elsewhere)."""

    member: ev.Member
    ignored: tuple[str, ...] = ()
    away: bool = False
    crisis: bool = False
    since: float = 0.0  # wall clock when they joined the queue (0: not waiting)
    note: str = ""  # what is on their mind, for the listener they are matched with


class Slot(msgspec.Struct, frozen=True, array_like=True):
    """One free place of a listener: `uid` can take a chat while holding `k` (priority k)."""

    uid: str
    k: int


class PrivateChat(msgspec.Struct):
    """A one-to-one chat: its room and its two sides (a handoff changes the listener)."""

    room: str
    seeker: str  # uid
    listener: str  # uid


@dataclass(frozen=True, slots=True)
class Board:
    """What the rule sees: one consistent read of the shared state."""

    seekers: Sequence[str]  # uids, in queue order
    slots: Sequence[Slot]  # in queue order
    people: Mapping[str, Profile]
    loads: Mapping[str, int]  # listener uid -> chats held
    capacity: int  # chats a listener holds at once
    apart: Collection[tuple[str, str]] = ()  # (listener, seeker) never to be matched
    resting: Collection[str] = ()  # listeners resting after a crisis-flagged chat


@dataclass(frozen=True, slots=True)
class Pair:
    seeker: Profile
    listener: Profile
    slot: Slot  # the listener's place this match takes


def choose(board: Board) -> Pair | None:
    """The first waiting seeker (in order) who has a place, with the first such place."""
    for uid in board.seekers:
        seeker = board.people.get(uid)
        if seeker is None or seeker.away:
            continue  # unknown (dropped by the caller) or away: keeps their place
        found = place_for(board, seeker)
        if found is not None:
            return Pair(seeker, board.people[found.uid], found)
    return None


def place_for(
    board: Board,
    seeker: Profile,
    slots: Sequence[Slot] | None = None,
    exclude: str | None = None,
) -> Slot | None:
    """The first of `slots` (default: all) whose listener may take `seeker`, other than
    `exclude` (the listener handing the chat over)."""
    for slot in board.slots if slots is None else slots:
        listener = board.people.get(slot.uid)
        if listener is not None and slot.uid != exclude and may_take(board, listener, seeker):
            return slot
    return None


def may_take(board: Board, listener: Profile, seeker: Profile) -> bool:
    listener_uid, seeker_uid = listener.member.uid, seeker.member.uid
    return (
        not listener.away
        and listener_uid != seeker_uid
        and listener_uid not in board.resting
        and board.loads.get(listener_uid, 0) < board.capacity
        and seeker_uid not in listener.ignored
        and listener_uid not in seeker.ignored
        and (listener_uid, seeker_uid) not in board.apart
    )


def loads_of(chats: Mapping[str, PrivateChat]) -> dict[str, int]:
    """Listener uid -> how many chats they hold."""
    loads: dict[str, int] = {}
    for private in chats.values():
        loads[private.listener] = loads.get(private.listener, 0) + 1
    return loads


def estimate(waits: Sequence[float], position: int, listeners: int) -> float | None:
    """A seeker's likely wait, in seconds, from recent waits: the median wait for each
    round of the listeners on now ahead of them. None when there is nothing to go by (no
    recent waits, or no listener on: then no estimate is honest)."""
    if not waits or listeners <= 0:
        return None
    rounds = math.ceil(max(1, position) / listeners)
    return round(statistics.median(waits) * rounds)
