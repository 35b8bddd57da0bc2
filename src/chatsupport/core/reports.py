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
from dataclasses import dataclass, field

import msgspec

from ..config import Config
from . import events as ev
from . import matching, staff
from . import requests as rq
from .chat import TICK_HOOKS, Chat, Refused, handles
from .limits import WindowCounter
from .names import name_key
from .rooms import normalise_room
from .session import Link, Session
from .text import clean

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


@dataclass(slots=True)
class Reports:
    """This node's part of reporting (in `chat.extensions["reports"]`): each reporter's
    hourly budget; the reports themselves are shared through the broker."""

    config: Config
    limit: WindowCounter = field(init=False)
    sequence: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.limit = WindowCounter(self.config.reports_per_hour, 3600.0)


async def alias(chat: Chat, uid: str) -> str:
    secret = await chat.broker.shared_secret("reporters")
    digest = hmac.new(secret, uid.encode(), hashlib.sha256).hexdigest()
    return "reporter-" + digest[:8]


async def keep(chat: Chat, report: ev.Report) -> None:
    """Shared for `report_retention`; past `max_reports`, the oldest are forgotten."""
    kept = Kept(chat.wallclock(), next(reports_of(chat).sequence), report)
    value = _encode.encode(kept).decode()
    await chat.broker.set_flag(KIND, report.id, chat.config.report_retention, value)
    await current(chat)


async def current(chat: Chat) -> list[ev.Report]:
    """Every report still kept, oldest first (at most `max_reports`)."""
    kept: list[Kept] = []
    for value in (await chat.broker.flags(KIND)).values():
        try:
            kept.append(_decode.decode(value))
        except msgspec.DecodeError:
            continue  # not one of ours: skip it rather than fail the list
    kept.sort(key=lambda k: (k.at, k.n))
    excess = len(kept) - chat.config.max_reports
    for old in kept[: max(0, excess)]:
        await chat.broker.clear_flag(KIND, old.report.id)
    return [k.report for k in kept[max(0, excess) :]]


def _already(kept: list[ev.Report], alias: str, room: str, message_id: int) -> bool:
    return any(
        r.reporter == alias and r.room == room and r.evidence[-1].id == message_id for r in kept
    )


def reports_of(chat: Chat) -> Reports:
    return chat.extension("reports", Reports, lambda: Reports(chat.config))


@handles(rq.Report)
async def report(chat: Chat, link: Link, request: rq.Request) -> None:
    assert isinstance(request, rq.Report)
    session = link.session
    state = reports_of(chat)
    if request.id is not None:
        room = _my_room(session, request.room or session.current)
        message = await _by_id(chat, session, room, request.id)
        reason = request.reason
    else:
        room, message, reason = await _latest(chat, session, request)
    if message.uid == session.uid:
        raise Refused("bad_request", "you cannot report yourself")
    reporter = await alias(chat, session.uid)
    if _already(await current(chat), reporter, room, message.id):
        raise Refused("bad_request", "you have already reported that message")
    if not state.limit.hit(session.uid, chat.clock()):
        raise Refused("rate_limited", "you have sent many reports; the moderators will see them")
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
    await keep(chat, event)
    matching.mark_reported(chat, session.uid, message.uid)  # never paired one-to-one
    chat.count("reports")
    log.info("report id=%s", event.id)
    await staff.tell_mods(chat, event)
    text = "thank you: the moderators will look at it (they will not tell anyone who reported)"
    chat.reply(link, ev.Notice(kind="report", text=text, name=message.name), request)


def _my_room(session: Session, room: str | None) -> str:
    name = normalise_room(room or "")
    if name not in session.rooms:
        raise Refused("not_in_room", "you can only report messages in rooms you are in")
    return name


async def _by_id(chat: Chat, session: Session, room: str, message_id: int) -> ev.Message:
    messages, _ = await chat.broker.history(room, max(0, message_id - 1))
    for message in messages:
        if message.id == message_id and _visible(chat, session, message):
            return message
    raise Refused("bad_request", f"message {message_id} in #{room} is not available any more")


def _visible(chat: Chat, session: Session, message: ev.Message) -> bool:
    return message.uid == session.uid or (message.room, message.id) not in chat.hidden


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
        if message.kind != "announce" and _visible(chat, session, message):
            latest[message.uid] = message
            latest["name:" + name_key(message.name)] = message
    return latest


async def _evidence(chat: Chat, room: str, message: ev.Message) -> list[ev.Message]:
    """The reported message and up to `report_evidence` before it, oldest first."""
    before = chat.config.report_evidence
    messages, _ = await chat.broker.history(room, max(0, message.id - 1 - before))
    kept = [m for m in messages if m.id <= message.id][-(before + 1) :]
    return kept if kept and kept[-1].id == message.id else [*kept, message]


@handles(rq.Reports)
async def reports(chat: Chat, link: Link, request: rq.Request) -> None:
    staff.require_mod(link)
    kept = await current(chat)
    for event in kept:
        chat.send(link, msgspec.structs.replace(event, ref=request.ref))
    hours = chat.config.report_retention / 3600
    text = f"{len(kept)} report(s) from the last {hours:g} hours" if kept else "no reports"
    chat.reply(link, ev.Notice(kind="reports", text=text), request)


async def _tick(chat: Chat) -> None:
    reports_of(chat).limit.prune(chat.clock())


TICK_HOOKS.append(_tick)
