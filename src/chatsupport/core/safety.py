"""Crisis support: real help lines offered privately, and staff alerted, when words suggest danger.

After a message is published (it is delivered as usual: nobody is silenced for saying
they are struggling), the CrisisMatcher reads it. On a match the author alone gets
`notice {kind: "resources", text, resources, region}` with the help lines of the region
they chose (`/resources GB`; never guessed from a network address), online moderators
and listeners get `alert {kind: "crisis", room, uid, name, text, message_id}`, and the
session is marked (`session.crisis`) so a listener can reach them first. One notice and
one alert per person per `crisis_repeat_seconds`, so nobody is nagged or flooded.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from . import events as ev
from . import requests as rq
from . import staff
from .chat import Chat
from .crisis import CrisisMatcher
from .feature import Feature, handles
from .matching import Matching
from .ports import BrokerUnavailable
from .resources import Resources
from .rooms import is_private
from .session import Link, Session
from .text import clean

log = logging.getLogger("chatsupport.safety")

PRIVATE = "(in a private one-to-one chat)"
CARE = (
    "It sounds like things are really hard right now. You don't have to face this alone: "
    "these people are there to listen, right now. (Only you can see this.)"
)


class Safety(Feature):
    """The phrase list, the help lines, and what each person chose.

    It comes before matching in the feature list: the crisis flag it sets on a message
    is what matching's `after_say` reads to move a waiting seeker ahead."""

    def __init__(self, matcher: CrisisMatcher, resources: Resources) -> None:
        self.matcher = matcher
        self.resources = resources
        self.regions: dict[str, str] = {}  # uid -> region code they chose
        self.offered: dict[str, float] = {}  # uid -> when help was last offered

    def line_names(self) -> set[str]:
        """Every help line's name: names nobody may take (`Everyday`'s help_lines)."""
        regions = [None, *self.resources.regions()]
        return {line.name for region in regions for line in self.resources.for_region(region)}

    def helplines(self) -> list[dict[str, Any]]:
        """The international lines, for someone refused at the door (banned, too many
        connections): help stays reachable to everyone."""
        return self.card(None)

    def card(self, region: str | None) -> list[dict[str, Any]]:
        return [{**r.to_dict(), "line": r.to_line()} for r in self.resources.for_region(region)]

    def hint(self) -> str:
        return f"For lines in your country: /resources CODE ({', '.join(self.resources.regions())})"

    @handles(rq.Resources, cost=0)
    async def help_lines(self, link: Link, request: rq.Resources) -> None:
        """Help lines any time; a region given is remembered for this session."""
        uid = link.session.uid
        asked = clean(request.region or "", keep_newlines=False)[:16]
        code = self.resources.normalise_region(asked) if asked else self.regions.get(uid)
        if asked and code is None:
            text = f"No help lines for {asked!r} yet; here are international ones. {self.hint()}"
        elif code is None or code == "INT":
            text = f"International help lines. {self.hint()}"
        else:
            self.regions[uid] = code
            text = f"Help lines for {self.resources.region_name(code) or code}:"
        notice = ev.Notice(kind="resources", text=text, resources=self.card(code), region=code)
        self.chat.reply(link, notice, request)

    async def after_say(self, session: Session, message: ev.Message) -> None:
        chat = self.chat
        if message.kind not in ("say", "me") or not self.matcher.matches(message.text):
            return
        session.crisis = True  # matching, later in the feature list, moves them ahead
        chat.count("crisis_matches")
        now = chat.clock()
        last = self.offered.get(session.uid)
        if last is not None and now - last < chat.config.crisis_repeat_seconds:
            return
        self.offered[session.uid] = now
        region = self.regions.get(session.uid)
        text = CARE if region else f"{CARE} {self.hint()}"
        notice = ev.Notice(kind="resources", text=text, resources=self.card(region), region=region)
        chat.send(session.link, notice)
        await _alert(chat, session, message)

    async def on_end(self, session: Session) -> None:
        self.regions.pop(session.uid, None)
        self.offered.pop(session.uid, None)


async def _alert(chat: Chat, session: Session, message: ev.Message) -> None:
    alert = ev.Alert(
        kind="crisis",
        room=message.room,
        uid=session.uid,
        name=session.name,
        text=message.text,
        message_id=message.id,
    )
    try:
        if is_private(message.room):
            await _alert_private(chat, alert)
        else:
            await staff.tell_staff(chat, alert)
        chat.count("crisis_alerts")
    except BrokerUnavailable:
        log.warning("crisis alert not delivered: broker unavailable")


async def _alert_private(chat: Chat, alert: ev.Alert) -> None:
    """A one-to-one chat stays private: its listener gets the words, moderators learn only
    that someone there may need help, other listeners nothing."""
    for uid in chat.feature(Matching).listeners_in(alert.room):
        await chat.broker.direct(uid, alert)
    await staff.tell_mods(chat, msgspec.structs.replace(alert, text=PRIVATE))
