"""Flood control beyond the per-connection budget: probation for newcomers, escalation.

New arrivals are on probation for their first `probation_seconds`: their message budget
is `probation_share` of the normal one (the text interface reads them more slowly, the
WebSocket answers `rate_limited`); it never keeps them from a listener (`/talk`).
Staff are never on probation. Someone over their budget `flood_strikes` times within
`flood_window` is muted for `flood_mute_seconds` (through moderation), told why, and
moderators get `alert {kind: "flood"}`. Only floods count: a refused request costs no
budget (the Chat refunds it), and mistakes (too long, not in the room, a slow-mode room, a
wrong token) are never strikes.
"""

from __future__ import annotations

import contextlib
import logging

from . import events as ev
from . import requests as rq
from . import staff
from .chat import Chat, Refused
from .feature import Feature
from .limits import TokenBucket, WindowCounter
from .moderation import Moderation, duration
from .ports import BrokerUnavailable
from .session import Link, Session

log = logging.getLogger("chatsupport.flood")


class Flood(Feature):
    """Probation budgets, strikes for being over the budget, and the automatic mute."""

    def __init__(self) -> None:
        self.told_probation: set[str] = set()  # uids told why they are slowed down

    def bind(self, chat: Chat) -> None:
        super().bind(chat)
        self.strikes = WindowCounter(chat.config.flood_strikes, chat.config.flood_window)

    def on_probation(self, session: Session, now: float) -> bool:
        """New arrivals, for their first `probation_seconds`; staff never are."""
        return session.role is None and now - session.created < self.chat.config.probation_seconds

    def on_new(self, session: Session) -> None:
        config = self.chat.config
        if config.probation_seconds > 0:
            share = config.probation_share
            rate, burst = config.msg_rate * share, max(1.0, config.msg_burst * share)
            session.bucket = TokenBucket(rate, burst)

    def check(self, link: Link, request: rq.Request) -> None:
        """Probation over (or signed in as staff): the normal budget from now on."""
        session, config = link.session, self.chat.config
        if session.bucket.rate == config.msg_rate:
            return
        if not self.on_probation(session, self.chat.clock()):
            session.bucket = TokenBucket(config.msg_rate, config.msg_burst)

    async def on_refused(self, link: Link, request: rq.Request, refusal: Refused) -> None:
        if not refusal.flood:
            return
        chat = self.chat
        session, now = link.session, chat.clock()
        moderation = chat.feature(Moderation)
        if moderation.muted_for(session.uid, now) > 0:
            return
        if self.on_probation(session, now) and session.uid not in self.told_probation:
            self.told_probation.add(session.uid)
            chat.send(link, ev.Notice(kind="probation", text=self._probation_text()))
        self.strikes.hit(session.uid, now)
        if self.strikes.full(session.uid, now):
            await self._auto_mute(link, moderation)

    def _probation_text(self) -> str:
        minutes = duration(self.chat.config.probation_seconds)
        return f"welcome! for your first {minutes} here, please write a little more slowly"

    async def _auto_mute(self, link: Link, moderation: Moderation) -> None:
        chat, session = self.chat, link.session
        seconds = chat.config.flood_mute_seconds
        self.strikes.clear(session.uid)
        await moderation.mute_everywhere(session.uid, seconds)
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

    async def on_tick(self) -> None:
        self.strikes.prune(self.chat.clock())

    async def on_end(self, session: Session) -> None:
        self.told_probation.discard(session.uid)
        self.strikes.clear(session.uid)
