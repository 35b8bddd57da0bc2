"""Reports: anyone can report a message; moderators see it with its evidence.

`report {id, reason}` (WebSocket: the message id, in `room` or the current room) or
`/report NAME REASON` (text: that person's latest message in your rooms; `report {uid}`
and `report {name}` do the same on WebSocket). A report carries its evidence: the
reported message and the few before it in that room, taken from the broker's history.
It goes live to online moderators, is listed by `/reports` on any node (reports are
broker flags of kind `report`, so every node shares them), and is forgotten after
`report_retention` (24 hours by default; the flag's TTL). The reporter appears only as
an opaque alias (a keyed hash of their uid under a secret every node shares, so
moderators can tell one reporter's reports apart without knowing who it is); the
reported person is never told anything.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import secrets

import msgspec

from . import events as ev
from . import requests as rq
from . import staff
from .chat import Chat, Refused
from .feature import Feature, handles
from .limits import WindowCounter
from .names import name_key
from .rooms import normalise_room
from .session import Link, Session
from .text import clean

REPORTS_PER_TOKEN = 20  # `reports` costs a token more per this many reports listed
log = logging.getLogger("chatsupport.reports")

MAX_REASON = 300


KIND = "report"  # the broker flags reports are kept in


class Kept(msgspec.Struct, frozen=True):
    """A report as the broker keeps it: when, and an order among reports of that moment."""

    at: float
    n: int
    report: ev.Report


_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(Kept)


async def alias(chat: Chat, uid: str) -> str:
    secret = await chat.broker.shared_secret("reporters")
    digest = hmac.new(secret, uid.encode(), hashlib.sha256).hexdigest()
    return "reporter-" + digest[:8]


def _already(kept: list[ev.Report], alias: str, room: str, message_id: int) -> bool:
    return any(
        r.reporter == alias and r.room == room and r.evidence[-1].id == message_id for r in kept
    )


class Reports(Feature):
    """This node's part of reporting: each reporter's hourly budget; the reports
    themselves are shared through the broker."""

    def __init__(self) -> None:
        self.sequence = itertools.count()

    def bind(self, chat: Chat) -> None:
        super().bind(chat)
        self.limit = WindowCounter(chat.config.reports_per_hour, 3600.0)

    async def keep(self, report: ev.Report) -> None:
        """Shared for `report_retention`; past `max_reports`, the oldest are forgotten."""
        chat = self.chat
        value = _encode.encode(Kept(chat.wallclock(), next(self.sequence), report)).decode()
        await chat.broker.set_flag(KIND, report.id, chat.config.report_retention, value)
        await self.current()

    async def current(self) -> list[ev.Report]:
        """Every report still kept, oldest first (at most `max_reports`)."""
        broker = self.chat.broker
        kept: list[Kept] = []
        for value in (await broker.flags(KIND)).values():
            try:
                kept.append(_decode.decode(value))
            except msgspec.DecodeError:
                continue  # not one of ours: skip it rather than fail the list
        kept.sort(key=lambda k: (k.at, k.n))
        excess = max(0, len(kept) - self.chat.config.max_reports)
        for old in kept[:excess]:
            await broker.clear_flag(KIND, old.report.id)
        return [k.report for k in kept[excess:]]

    @handles(rq.Report)
    async def report(self, link: Link, request: rq.Report) -> None:
        chat, session = self.chat, link.session
        if request.id is not None:
            room = _my_room(session, request.room or session.current)
            message = await _by_id(chat, session, room, request.id)
            reason = request.reason
        else:
            room, message, reason = await _latest(chat, session, request)
        if message.uid == session.uid:
            raise Refused("bad_request", "you cannot report yourself")
        reporter = await alias(chat, session.uid)
        if _already(await self.current(), reporter, room, message.id):
            raise Refused("bad_request", "you have already reported that message")
        if not self.limit.hit(session.uid, chat.clock()):
            text = "you have sent many reports; the moderators will see them"
            raise Refused("rate_limited", text)
        event = ev.Report(
            id="r" + secrets.token_hex(4),
            reporter=reporter,
            uid=message.uid,
            name=message.name,
            room=room,
            reason=clean(reason, keep_newlines=False)[:MAX_REASON] or "(no reason given)",
            evidence=await _evidence(chat, room, message),
            ts=round(chat.wallclock(), 3),
        )
        await self.keep(event)
        chat.reported(session.uid, message.uid)  # e.g. never paired one-to-one
        chat.count("reports")
        log.info("report id=%s", event.id)
        await staff.tell_mods(chat, event)
        text = "thank you: the moderators will look at it (they will not tell anyone who reported)"
        chat.reply(link, ev.Notice(kind="report", text=text, name=message.name), request)

    @handles(rq.Reports, role="mod")
    async def reports(self, link: Link, request: rq.Reports) -> None:
        kept = await self.current()
        for event in kept:
            self.chat.send(link, msgspec.structs.replace(event, ref=request.ref))
        hours = self.chat.config.report_retention / 3600
        text = f"{len(kept)} report(s) from the last {hours:g} hours" if kept else "no reports"
        self.chat.reply(link, ev.Notice(kind="reports", text=text), request)
        self.chat.charge(link, len(kept) / REPORTS_PER_TOKEN)  # by the size of the answer

    async def on_tick(self) -> None:
        self.limit.prune(self.chat.clock())


def _my_room(session: Session, room: str | None) -> str:
    name = normalise_room(room or "")
    if name not in session.rooms:
        raise Refused("not_in_room", "you can only report messages in rooms you are in")
    return name


async def _by_id(chat: Chat, session: Session, room: str, message_id: int) -> ev.Message:
    messages, _ = await chat.broker.history(room, max(0, message_id - 1))
    for message in messages:
        if message.id == message_id and chat.visible_to(message, session.uid):
            return message
    raise Refused("bad_request", f"message {message_id} in #{room} is not available any more")


async def _latest(chat: Chat, session: Session, request: rq.Report) -> tuple[str, ev.Message, str]:
    """The person's latest message in the reporter's rooms (the current room first).

    On the text interface `/report Quiet Otter rude` cannot tell where the name ends,
    so the longest leading run of words that names someone who spoke is the name.
    """
    rooms = list(session.rooms)
    if request.room and normalise_room(request.room) in rooms:
        rooms.remove(normalise_room(request.room))
        rooms.insert(0, normalise_room(request.room))
    words = f"{request.name or ''} {request.reason}".split()
    for room in rooms:
        latest = await _latest_by_speaker(chat, session, room)
        if request.uid:
            if request.uid in latest:
                return room, latest[request.uid], request.reason
            continue
        for size in range(len(words), 0, -1):
            found = latest.get("name:" + name_key(" ".join(words[:size])))
            if found is not None:
                return room, found, " ".join(words[size:])
    who = request.uid or request.name or "that person"
    raise Refused("bad_request", f"no recent message from {who} in your rooms to report")


async def _latest_by_speaker(chat: Chat, session: Session, room: str) -> dict[str, ev.Message]:
    """uid -> and name key -> that speaker's latest visible message in `room`."""
    messages, _ = await chat.broker.history(room, 0)
    latest: dict[str, ev.Message] = {}
    for message in messages:
        if message.kind != "announce" and chat.visible_to(message, session.uid):
            latest[message.uid] = message
            latest["name:" + name_key(message.name)] = message
    return latest


async def _evidence(chat: Chat, room: str, message: ev.Message) -> list[ev.Message]:
    """The reported message and up to `report_evidence` before it, oldest first."""
    before = chat.config.report_evidence
    messages, _ = await chat.broker.history(room, max(0, message.id - 1 - before))
    kept = [m for m in messages if m.id <= message.id][-(before + 1) :]
    return kept if kept and kept[-1].id == message.id else [*kept, message]
