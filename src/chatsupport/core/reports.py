"""Reports: anyone can report a message; moderators see it with its evidence.

`report {id, reason}` (WebSocket: the message id, in `room` or the current room) or
`/report NAME REASON` (text: that person's latest message in your rooms; `report {uid}`
and `report {name}` do the same on WebSocket). A report carries its evidence: the
reported message and the few before it in that room, taken from the broker's history.
It goes live to online moderators and is kept by the broker (`ReportLog`, shared by every
node) for `report_retention` (24 hours by default). The reporter appears only as an opaque
alias (a keyed hash of their uid under a secret every node shares, so moderators can tell
one reporter's reports apart without knowing who it is); the reported person is never told
anything.

Reports must not be a lever against everyone else: an attempt is counted against the
reporter's hourly budget before anything else is done (a refused one costs the limiter
only); reports about the same person in the same room merge into one (with a count); a
reporter holds at most `open_reports_per_reporter` open reports, so junk cannot push
real reports out; `/reports` lists one page, newest first, by state and room, never more
than a connection can take (PAGE reports and a quarter of `outbox_limit` at most).
"""

from __future__ import annotations

import hashlib
import hmac
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
from .ports import FiledReport, KeptReport
from .rooms import normalise_room, valid_room
from .session import Link, Session
from .text import clean

REPORTS_PER_TOKEN = 20  # `reports` costs a token more per this many reports listed
log = logging.getLogger("chatsupport.reports")

MAX_REASON = 300
PAGE = 20  # reports per page of `/reports`, at most
STATES = ("open", "handled")

_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(ev.Report)


async def alias(chat: Chat, uid: str) -> str:
    secret = await chat.broker.shared_secret("reporters")
    digest = hmac.new(secret, uid.encode(), hashlib.sha256).hexdigest()
    return "reporter-" + digest[:8]


def _shown(kept: KeptReport, ref: str | None) -> ev.Report:
    event = _decode.decode(kept.event)
    return msgspec.structs.replace(event, state=kept.state, count=kept.count, ref=ref)


class Reports(Feature):
    """This node's part of reporting: each reporter's hourly budget; the reports
    themselves are shared through the broker."""

    def bind(self, chat: Chat) -> None:
        super().bind(chat)
        self.limit = WindowCounter(chat.config.reports_per_hour, 3600.0)

    @handles(rq.Report)
    async def report(self, link: Link, request: rq.Report) -> None:
        chat, session = self.chat, link.session
        self._budget(session)
        if request.id is not None:
            room = _my_room(session, request.room or session.current)
            message = await _by_id(chat, session, room, request.id)
            reason = request.reason
        else:
            room, message, reason = await _latest(chat, session, request)
        if message.uid == session.uid:
            raise Refused("bad_request", "you cannot report yourself")
        evidence = await _evidence(chat, room, message)
        who = ev.Member(message.uid, message.name, message.role)
        await self.file(link, request, room, who, reason, evidence)

    async def about(self, link: Link, request: rq.Request, room: str, who: ev.Member) -> None:
        """Report `who` from a one-to-one chat being ended (`end {report}`): their latest
        words there as evidence, or the chat's last words if they said nothing."""
        chat, session = self.chat, link.session
        self._budget(session)
        reason = getattr(request, "report", None) or ""
        latest = (await _latest_by_speaker(chat, session, room)).get(who.uid)
        if latest is not None:
            evidence = await _evidence(chat, room, latest)
        else:
            messages, _ = await chat.broker.history(room, 0)
            evidence = messages[-(chat.config.report_evidence + 1) :]
        await self.file(link, request, room, who, reason, evidence)

    def _budget(self, session: Session) -> None:
        """First, before any other work: refusing costs nothing but the limiter."""
        if not self.limit.hit(session.uid, self.chat.clock()):
            text = "you have sent many reports; the moderators will see them"
            raise Refused("rate_limited", text)

    async def file(
        self,
        link: Link,
        request: rq.Request,
        room: str,
        who: ev.Member,
        reason: str,
        evidence: list[ev.Message],
    ) -> None:
        """Keep a report about `who`, tell the moderators (and the reporter, thanks)."""
        chat, session = self.chat, link.session
        event = ev.Report(
            id="r" + secrets.token_hex(4),
            reporter=await alias(chat, session.uid),
            uid=who.uid,
            name=who.name,
            room=room,
            reason=clean(reason, keep_newlines=False)[:MAX_REASON] or "(no reason given)",
            evidence=evidence,
            ts=round(chat.wallclock(), 3),
        )
        event = await self._file(event)
        chat.reported(session.uid, who.uid)  # e.g. never paired one-to-one
        chat.count("reports")
        log.info("report id=%s count=%d", event.id, event.count)
        await staff.tell_mods(chat, event)
        await self._escalate(event)
        text = "thank you: the moderators will look at it (they will not tell anyone who reported)"
        chat.reply(link, ev.Notice(kind="report", text=text, name=who.name), request)

    async def _escalate(self, report: ev.Report) -> None:
        """Repeated reports about one person bring a moderator in: every
        `reports_alert_after` open reports about them (merged ones counted, among the newest
        page of open reports: one bounded read), an alert to moderators."""
        every = self.chat.config.reports_alert_after
        if every <= 0:
            return
        kept, _ = await self.chat.broker.list_reports("open", None, None, PAGE)
        count = sum(k.count for k in kept if _decode.decode(k.event).uid == report.uid)
        if not count or count % every:
            return
        text = f"reported {count} times, reports not yet handled: please step in"
        alert = ev.Alert(
            kind="reports", room=report.room, uid=report.uid, name=report.name, text=text
        )
        await staff.tell_mods(self.chat, alert)
        self.chat.count("report_escalations")

    async def _file(self, event: ev.Report) -> ev.Report:
        """Kept by the broker; what moderators are shown live (a merged report: the new
        reason and evidence, under the open report's id, with how many there are now)."""
        config = self.chat.config
        filed = FiledReport(
            event.id, event.room, event.reporter, event.uid, _encode.encode(event).decode()
        )
        filing = await self.chat.broker.file_report(
            filed, config.report_retention, config.max_reports, config.open_reports_per_reporter
        )
        if filing.outcome == "again":
            text = f"you have already reported {event.name} here; the moderators have it"
            raise Refused("bad_request", text)
        if filing.outcome == "capped":
            most = config.open_reports_per_reporter
            text = f"you have {most} reports the moderators have not seen to yet; thank you"
            raise Refused("rate_limited", text)
        return msgspec.structs.replace(event, id=filing.id, count=filing.count)

    @handles(rq.Reports, role="mod")
    async def reports(self, link: Link, request: rq.Reports) -> None:
        chat = self.chat
        if request.state not in STATES:
            raise Refused("bad_request", "state is open or handled")
        room = normalise_room(request.room) if request.room else None
        if room is not None and not valid_room(room):
            raise Refused("bad_request", "room names are 1-32 of a-z, 0-9 and -")
        kept, more = await chat.broker.list_reports(request.state, room, request.before, PAGE)
        budget, shown = chat.config.outbox_limit // 4, 0
        for item in kept:
            event = _shown(item, request.ref)
            budget -= len(_encode.encode(event))
            if shown and budget < 0:  # the rest next time: never more than the link can take
                more = True
                break
            chat.send(link, event)
            shown += 1
            last = event.id
        where = f" in #{room}" if room else ""
        text = f"{shown} report(s), {request.state}{where}, newest first" if shown else ""
        text = text or f"no {request.state} reports{where}"
        before = last if shown and more else None
        if before:
            text += f"; more: /reports {request.state} {room or ''} before {before}".replace(
                "  ", " "
            )
        chat.reply(link, ev.Notice(kind="reports", text=text, before=before), request)
        chat.charge(link, shown / REPORTS_PER_TOKEN)  # by the size of the answer

    @handles(rq.Handled, role="mod")
    async def handled(self, link: Link, request: rq.Handled) -> None:
        kept = await self.chat.broker.mark_report(request.id, "handled")
        if kept is None:
            hours = self.chat.config.report_retention / 3600
            text = f"no report {request.id} (reports are forgotten after {hours:g} hours)"
            raise Refused("bad_request", text)
        text = f"report {request.id} is marked handled"
        self.chat.reply(link, ev.Notice(kind="handled", text=text), request)

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
