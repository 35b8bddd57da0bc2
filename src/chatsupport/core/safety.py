"""Crisis support: real help lines offered privately, and staff alerted, when words suggest danger.

After a message is published (it is delivered as usual: nobody is silenced for saying
they are struggling), the CrisisMatcher reads it. On a match the author alone gets
`notice {kind: "resources", text, resources, region}` with the help lines of their region
first (the one they chose with `/region GB` or their page guessed; never from a network
address), online moderators and listeners get `alert {kind: "crisis", room, uid, name,
text, message_id}`, and the session is marked (`session.crisis`) so a listener can reach
them first. One notice and one alert per person per `crisis_repeat_seconds`, so nobody is
nagged or flooded.

Crisis words come before any sanction: a message refused because its author is muted,
slowed, over their budget or in a locked room is still read (`on_refused`), and its author
still gets the help lines and staff the alert; a shadow-muted person's message is published
(only they see it) and read as any other.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from . import events as ev
from . import requests as rq
from . import staff
from .chat import Chat, Refused
from .commands import is_command
from .crisis import CrisisMatcher
from .feature import Feature, handles
from .matching import Matching
from .ports import BrokerUnavailable
from .resources import INTERNATIONAL, Resources
from .rooms import is_private, normalise_room
from .session import Link, Session
from .text import clean
from .vocabulary import NoticeKind

log = logging.getLogger("chatsupport.safety")

PRIVATE = "(in a private one-to-one chat)"
UNTOLD_ALERTS = 200  # crisis alerts kept while the broker is away (the oldest go first)
CARE = (
    "It sounds like things are really hard right now. You don't have to face this alone: "
    "these people are there to listen, right now. (Only you can see this.)"
)


class Safety(Feature):
    """The phrase list and the help lines.

    It comes before matching in the feature list: the crisis flag it sets on a message
    is what matching's `after_say` reads to move a waiting seeker ahead; and before flood
    control, so a refused message's help lines come before any automatic mute."""

    def __init__(self, matcher: CrisisMatcher, resources: Resources) -> None:
        self.matcher = matcher
        self.resources = resources
        self.offered: dict[str, float] = {}  # uid -> when help was last offered
        self.asked: set[str] = set()  # uids asked once which region they are in
        # Crisis alerts staff could not be told of (the broker was away): sent at the first
        # tick that reaches it, oldest first; bounded, so an outage cannot grow it forever.
        self.untold: deque[list[_Telling]] = deque(maxlen=UNTOLD_ALERTS)

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

    def regions(self) -> list[dict[str, str]]:
        """Every region with its own lines, for a person asked to choose."""
        codes = self.resources.regions()
        return [{"code": c, "name": self.resources.region_name(c) or c} for c in codes]

    def lines(self, kind: NoticeKind, text: str, region: str | None, ask: bool) -> ev.Notice:
        """A `resources` notice: the region's lines first, and the choice if `ask`."""
        regions = self.regions() if ask else None
        return ev.Notice(
            kind=kind, text=text, resources=self.card(region), region=region, regions=regions
        )

    def _code(self, raw: str | None) -> tuple[str, str | None]:
        """What the person typed (cleaned) and the region code it names, if any."""
        asked = clean(raw or "", keep_newlines=False)[:16]
        return asked, self.resources.normalise_region(asked) if asked else None

    @handles(rq.Resources, cost=0)
    async def help_lines(self, link: Link, request: rq.Resources) -> None:
        """Help lines any time: the region given (remembered), else the person's own; a
        person whose region is unknown is asked once which it is."""
        session = link.session
        asked, code = self._code(request.region)
        if asked and code is None:
            text = f"No help lines for {asked!r} yet; here are international ones."
        else:
            if code is not None and code != INTERNATIONAL:
                session.region = code  # "anywhere" keeps the region chosen before
            code = code or session.region
            if code is None or code == INTERNATIONAL:
                text = "International help lines."
            else:
                text = f"Help lines for {self.resources.region_name(code) or code}:"
        ask = session.region is None and session.uid not in self.asked
        if ask:
            self.asked.add(session.uid)
            text += " Which country are you in? Its lines will come first."
        self.chat.reply(link, self.lines("resources", text, code, ask), request)

    @handles(rq.Region, cost=0)
    async def region(self, link: Link, request: rq.Region) -> None:
        """Set (or, without a code, tell) the region whose lines come first."""
        session = link.session
        asked, code = self._code(request.code)
        if asked and code is None:
            raise Refused("bad_request", f"no help lines for {asked!r} yet; /region lists them")
        if code == INTERNATIONAL:
            session.region = None
            text = "You will see international help lines."
        elif code is not None:
            session.region = code
            text = f"Help lines for {self.resources.region_name(code) or code} will come first."
        elif session.region:
            text = f"Your region is {self.resources.region_name(session.region) or session.region}."
        else:
            text = "No region chosen: you see international help lines."
        notice = self.lines("region", text, session.region, ask=not asked)
        self.chat.reply(link, notice, request)

    async def after_say(self, session: Session, message: ev.Message) -> None:
        if message.kind in ("say", "me") and self.matcher.matches(message.text):
            await self._offer(session, message.room, message.text, message.id)

    async def on_refused(self, link: Link, request: rq.Request, refusal: Refused) -> None:
        """Crisis words before any sanction: a refused message is still read."""
        if not isinstance(request, rq.Say | rq.Me):
            return
        if isinstance(request, rq.Say) and is_command(request.text):
            return
        if not self.matcher.matches(request.text):
            return
        session = link.session
        room = normalise_room(request.room) if request.room else session.current
        text = clean(request.text)[: self.chat.config.max_text]
        await self._offer(session, room or "", text, None)

    async def _offer(self, session: Session, room: str, text: str, message_id: int | None) -> None:
        """Flag the person, then (at most once per `crisis_repeat_seconds`) give them the
        help lines privately and alert staff."""
        chat = self.chat
        session.crisis = True  # matching, later in the feature list, moves them ahead
        chat.count("crisis_matches")
        now = chat.clock()
        last = self.offered.get(session.uid)
        if last is not None and now - last < chat.config.crisis_repeat_seconds:
            return
        self.offered[session.uid] = now
        region = session.region
        chat.send(session.link, self.lines("resources", CARE, region, ask=region is None))
        alert = ev.Alert(
            kind="crisis",
            room=room,
            uid=session.uid,
            name=session.name,
            text=text,
            message_id=message_id,
        )
        owed = await _tell(chat, _tellings(chat, alert))
        if owed:
            log.warning("crisis alert not delivered everywhere yet: broker unavailable; kept")
            self.untold.append(owed)
        else:
            chat.count("crisis_alerts")

    async def on_tick(self) -> None:
        """Staff learn of what they could not be told while the broker was away."""
        chat = self.chat
        while self.untold and chat.broker.healthy:
            first = self.untold[0]
            owed = await _tell(chat, first)
            still_first = self.untold and self.untold[0] is first  # not pushed out meanwhile
            if owed:
                if still_first:
                    self.untold[0] = owed
                return  # away again: the next tick tries
            if still_first:
                self.untold.popleft()
            chat.count("crisis_alerts_late")

    async def on_end(self, session: Session) -> None:
        self.offered.pop(session.uid, None)
        self.asked.discard(session.uid)


@dataclass(frozen=True, slots=True)
class _Telling:
    """One way a crisis alert reaches staff: to a one-to-one chat's listener (`uid`,
    wherever they are) or on a staff channel to every node (`elsewhere`: every node but
    this one, whose staff heard it while the broker was away)."""

    alert: ev.Alert
    uid: str | None = None
    channel: str = staff.MODS
    elsewhere: bool = False

    async def send(self, chat: Chat) -> _Telling | None:
        """None once it went out; else what is still owed."""
        if self.uid is None:
            everywhere = await chat.broker.signal(
                self.channel, self.alert, None, elsewhere=self.elsewhere
            )
            return None if everywhere else replace(self, elsewhere=True)
        try:
            await chat.broker.direct(self.uid, self.alert)
        except BrokerUnavailable:
            return self
        return None


def _tellings(chat: Chat, alert: ev.Alert) -> list[_Telling]:
    """A public room's alert goes to moderators and listeners. A one-to-one chat stays
    private: its listener gets the words, moderators learn only that someone there may need
    help, other listeners nothing."""
    if not is_private(alert.room):
        return [_Telling(alert, channel=staff.MODS), _Telling(alert, channel=staff.LISTENERS)]
    listeners = chat.feature(Matching).listeners_in(alert.room)
    mods = _Telling(msgspec.structs.replace(alert, text=PRIVATE), channel=staff.MODS)
    return [*(_Telling(alert, uid=uid) for uid in listeners), mods]


async def _tell(chat: Chat, tellings: list[_Telling]) -> list[_Telling]:
    """Send each; what could not go out (the broker is away) is returned, to send later."""
    owed = [await telling.send(chat) for telling in tellings]
    return [telling for telling in owed if telling is not None]
