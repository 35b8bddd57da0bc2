"""The words of the wire protocol that are not free text: error codes, notice kinds, roles.

Each is a `Literal`: mypy refuses a word that is not listed here (a typo, or a Python
class name that happened to match), msgspec refuses one when decoding, and the JSON
carries the same strings as before. docs/protocol.md lists the same words, and
tests/core/test_vocabulary.py checks that the two agree: adding one means documenting it.
"""

from __future__ import annotations

from typing import Literal, get_args

ErrorCode = Literal[
    "bad_json",  # a frame that is not one valid JSON value (WebSocket)
    "bad_request",
    "unknown_type",
    "too_long",
    "rate_limited",
    "not_in_room",
    "forbidden",
    "banned",
    "muted",
    "invalid_name",
    "name_taken",
    "too_many_connections",
    "too_many_rooms",  # `join` would open one room too many (per person, per node)
    "unavailable",
]

NoticeKind = Literal[
    # everyday
    "nick",
    "help",
    "ignore",
    "unignore",
    "auth",
    "announce",  # a server announcement (`broadcast`)
    # help lines, one-to-one support
    "resources",
    "talk",
    "listen",
    "queue",
    "handoff",
    "region",  # you chose a region: its help lines first
    "offer",  # a listener is there for you, if you would like to talk
    "offered",  # the listener who offered: it was passed on
    "feedback",  # after a one-to-one chat: "did this help?"
    "thanks",  # your answer was counted
    "rest",  # a listener after a crisis chat: no new chat for a while
    "debrief",  # a listener asked for a debrief
    # to the person moderated, or a room
    "kicked",
    "banned",
    "mute",
    "unmute",
    "probation",
    "slow",
    "lock",
    "unlock",
    # a moderator's answer
    "kick",
    "shadow",
    "ban",
    "unban",
    "announced",
    "deleted",  # to moderators: a moderator deleted someone's message (never its text)
    "report",
    "reports",
    "handled",  # a moderator: the report is marked handled
    # the shared broker went away, came back
    "unavailable",
    "available",
]

# Why a resume's replay ended before giving everything (`resumed.reason`, complete false).
ReplayCut = Literal[
    "overtaken",  # more live events came meanwhile than are held for one person
    "unavailable",  # shared state went away during the replay
]

Role = Literal["listener", "mod"]
Ending = Literal["kicked", "banned"]  # a moderator ended the session: the notice and bye say
# What a ban covers: the person (session, client id) and their network's keyed hash
# (CONTRACT §7, the default), or the person only (for audiences behind shared networks).
BanScope = Literal["address", "person"]

ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)
NOTICE_KINDS: tuple[NoticeKind, ...] = get_args(NoticeKind)
REPLAY_CUTS: tuple[ReplayCut, ...] = get_args(ReplayCut)
ROLES: tuple[Role, ...] = get_args(Role)
BAN_SCOPES: tuple[BanScope, ...] = get_args(BanScope)


def as_role(word: str) -> Role | None:
    """`word` if it names a role (a tokens file line, a record from another node)."""
    for role in ROLES:
        if word == role:
            return role
    return None


def as_ending(word: str) -> Ending:
    """Why another node asked this one to end a session; anything unknown is a kick."""
    return "banned" if word == "banned" else "kicked"
