"""Flood control beyond the per-connection budget: probation for newcomers, escalation.

New arrivals are on probation for their first `probation_seconds`: their message budget
is `probation_share` of the normal one (the text interface reads them more slowly, the
WebSocket answers `rate_limited`); it never keeps them from a listener (`/talk`).
Staff are never on probation. Someone `rate_limited` `flood_strikes`
times within `flood_window` is muted for `flood_mute_seconds`, told why, and moderators
get `alert {kind: "flood"}`.
"""

from __future__ import annotations

import contextlib
import logging

from . import events as ev
from . import requests as rq
from . import staff
from .chat import CHECKS, NEW_HOOKS, REFUSED_HOOKS, Chat
from .limits import TokenBucket
from .moderation import Moderation, duration, moderation_of
from .modstate import share
from .ports import BrokerUnavailable
from .session import Link, Session

log = logging.getLogger("chatsupport.flood")


def _start_probation(chat: Chat, session: Session) -> None:
    config = chat.config
    if config.probation_seconds > 0:
        share = config.probation_share
        session.bucket = TokenBucket(config.msg_rate * share, max(1.0, config.msg_burst * share))


def _graduate(chat: Chat, link: Link, request: rq.Request) -> None:
    """Probation over (or signed in as staff): the normal budget from now on."""
    session = link.session
    if session.bucket.rate == chat.config.msg_rate:
        return
    if not moderation_of(chat).on_probation(session, chat.clock()):
        session.bucket = TokenBucket(chat.config.msg_rate, chat.config.msg_burst)


async def _refused(chat: Chat, link: Link, code: str) -> None:
    if code != "rate_limited":
        return
    state = moderation_of(chat)
    session, now = link.session, chat.clock()
    if state.muted_for(session.uid, now) > 0:
        return
    if state.on_probation(session, now) and session.uid not in state.told_probation:
        state.told_probation.add(session.uid)
        chat.send(link, ev.Notice(kind="probation", text=_probation_text(chat)))
    state.strikes.hit(session.uid, now)
    if state.strikes.full(session.uid, now):
        await _auto_mute(chat, link, state, now)


def _probation_text(chat: Chat) -> str:
    minutes = duration(chat.config.probation_seconds)
    return f"welcome! for your first {minutes} here, please write a little more slowly"


async def _auto_mute(chat: Chat, link: Link, state: Moderation, now: float) -> None:
    session = link.session
    seconds = chat.config.flood_mute_seconds
    state.strikes.clear(session.uid)
    try:
        await share(chat, "mute", session.uid, None, seconds)  # every node: they may resume
    except BrokerUnavailable:
        state.mutes[session.uid] = now + seconds  # shared state away: at least here
    chat.count("auto_mutes")
    log.info("auto mute uid=%s", session.uid)
    chat.send(
        link,
        ev.Notice(
            kind="mute",
            text=f"you kept sending too fast, so you are muted for {duration(seconds)}; "
            "you can still read",
        ),
    )
    alert = ev.Alert(
        kind="flood",
        room=session.current or "",
        uid=session.uid,
        name=session.name,
        text=f"muted automatically for {duration(seconds)} for flooding",
    )
    with contextlib.suppress(BrokerUnavailable):  # the mute holds; only the heads-up is lost
        await staff.tell_mods(chat, alert)


NEW_HOOKS.append(_start_probation)
CHECKS.append(_graduate)
REFUSED_HOOKS.append(_refused)
