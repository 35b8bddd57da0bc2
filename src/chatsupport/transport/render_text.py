"""How each event reads on the plain-text interface (netcat, telnet).

Every line the server writes starts with a marker (`<name>`, `* name`, `--`, `***`, `!!`);
message text is split on newlines and each line is prefixed again with its speaker, so a
message can never pose as another line or another speaker.

A terminal wraps long lines, so what people write is also tamed (`_tame`): runs of blank
characters become one space and a line's leading ones go (padding cannot push text to the
start of the next screen line), and anything shaped like a speaker's tag (`<Kind Owl
(mod)>`) is shown in single angle quotation marks instead (U+2039, U+203A), wherever it
stands.
"""

from __future__ import annotations

import re

from ..core import events as ev
from ..core.moderation import duration

# What a notice asks of the person, said the way this interface does it.
_HINTS = {
    "feedback": "-- /feedback helpful, /feedback not-really or /feedback skip\n",
    "rest": "-- /debrief asks the moderators for one\n",
    "offer": "-- /talk to talk privately with a listener\n",
}

# Whitespace but newlines, and the characters that print blank (braille blank, Hangul fillers).
_BLANKS = re.compile(r"(?:[^\S\n]|[\u2800\u3164\u115f\u1160\uffa0])+")
# What a speaker's tag looks like: a name's characters, then maybe a role badge.
_TAG = re.compile(r"<([\w .'\-]{1,40}(?: ?\((?:mod|listener)\))?)>")


def _lines(prefix: str, text: str) -> str:
    return "".join(f"{prefix}{line}\n" for line in text.split("\n"))


def _tame(text: str) -> str:
    """Words people wrote, as the text interface shows them (see the module docstring)."""
    lines = (_BLANKS.sub(" ", line).lstrip(" ") for line in text.split("\n"))
    return _TAG.sub("\u2039\\1\u203a", "\n".join(lines))


def _message(event: ev.Message, room_tag: str) -> str:
    text = _tame(event.text)
    if event.kind == "me":
        return _lines(f"{room_tag}* {event.name} ", text)
    if event.kind == "announce":
        return _lines(f"{room_tag}*** ", text)
    badge = {"mod": " (mod)", "listener": " (listener)"}.get(event.role or "", "")
    return _lines(f"{room_tag}<{event.name}{badge}> ", text)


def _here(count: int, away: int) -> str:
    """`3 here`, or `2 here, 1 away` when some of them lost their connection."""
    return f"{count - away} here, {away} away" if away else f"{count} here"


def _presence(event: ev.Presence) -> str:
    if event.event == "nick":
        return f"-- {event.old} is now known as {event.name} in #{event.room}\n"
    if event.event in ("away", "back"):
        return f"-- {event.name} is {event.event}\n"
    verb = "joined" if event.event == "join" else "left"
    return f"-- {event.name} {verb} #{event.room} ({_here(event.count, event.away)})\n"


def _members(members: list[ev.Member]) -> str:
    return ", ".join(_member(m) for m in members)


def _member(member: ev.Member) -> str:
    marks = [m for m in (member.role, "away" if member.away else None) if m]
    return member.name + (f" ({', '.join(marks)})" if marks else "")


def _deleted(event: ev.Deleted) -> str:
    by = " by a moderator" if event.moderated else ""
    return f"-- a message from {event.name} was deleted{by}\n"


def _help_lines(resources: list[dict[str, object]] | None) -> str:
    return "".join(
        f"-- {resource.get('line') or resource.get('name')}\n" for resource in resources or ()
    )


def _notice(event: ev.Notice) -> str:
    if event.kind in ("announce", "unavailable", "available"):  # from the server itself
        return _lines("*** ", event.text)
    text = _lines("-- ", event.text) + _help_lines(event.resources)
    if event.regions:  # asked which region they are in: how to answer, on this interface
        codes = ", ".join(r["code"] for r in event.regions)
        text += f"-- for the lines of your country: /region CODE ({codes})\n"
    return text + _HINTS.get(event.kind, "")


def _welcome(event: ev.Welcome, help_url: str | None) -> str:
    where = f"/resources, or {help_url} in a browser" if help_url else "/resources"
    return (
        f"*** Welcome to ChatSupport, a quiet place to talk. You are {event.name}, "
        f"in #{event.room}. Type /help for commands. Help lines any time: {where}\n"
    )


def queue_outlook(event: ev.Queue) -> str | None:
    """Who is on and what recent waits suggest, when known (the text and IRC interfaces)."""
    if event.listeners == 0:
        return "no listener is on right now; you keep your place. Help lines: /resources"
    if not event.listeners:
        return None
    some = f"{event.listeners} listener{'s' if event.listeners != 1 else ''} on now"
    return some + (f"; recent waits suggest about {duration(event.wait)}" if event.wait else "")


def _queue(event: ev.Queue) -> str:
    """Where they stand, then (when known) who is on and what recent waits suggest."""
    text = f"-- you are number {event.position} in the queue for a listener\n"
    outlook = queue_outlook(event)
    return text + (f"-- {outlook}\n" if outlook else "")


def _matched(event: ev.Matched) -> str:
    text = (
        f"-- you are now talking privately with {event.partner.name} in "
        f"#{event.room}; what you type goes there. /leave ends it.\n"
    )
    if event.note:
        text += _lines("-- while waiting they wrote: ", event.note)
    return text


def _report(event: ev.Report) -> str:
    """A report for a moderator, with its evidence (the reported message marked `>`)."""
    extra = f", {event.count} reports" if event.count > 1 else ""
    extra += ", handled" if event.state != "open" else ""
    text = f"*** [report {event.id}{extra}] {event.name} in #{event.room}: {event.reason}\n"
    for message in event.evidence:
        mark = ">" if message is event.evidence[-1] else " "
        text += _lines(f"***  {mark} <{message.name}> ", _tame(message.text))
    return text


def render(event: ev.Event, room_tag: str = "", help_url: str | None = None) -> str | None:
    """The text for `event`; `room_tag` (e.g. "[#help] ") marks a room other than the current;
    `help_url`, the web help page, is named in the greeting."""
    match event:
        case ev.Message():
            return _message(event, room_tag)
        case ev.Presence():
            return _presence(event)
        case ev.Deleted():
            return _deleted(event)
        case ev.Typing():
            return None  # a one-to-one chat's typing indicator is for pages, not lines
        case ev.Welcome():
            return _welcome(event, help_url)
        case ev.Joined():
            more = " ..." if event.count > len(event.members) else ""
            names = _members(event.members)
            here = _here(event.count, event.away)
            return f"-- you are in #{event.room} ({here}): {names}{more}\n"
        case ev.Left():
            return f"-- you left #{event.room}\n"
        case ev.Who():
            count = len(event.members) if event.count is None else event.count
            more = f" ... (/who {event.room} {event.page + 1} for more)" if event.more else ""
            return f"-- in #{event.room} ({count}): {_members(event.members)}{more}\n"
        case ev.Rooms():
            listed = ", ".join(f"#{r.name} ({r.count})" for r in event.rooms) or "none"
            more = f" ... (/rooms {event.page + 1} for more)" if event.more else ""
            return f"-- rooms: {listed}{more}\n"
        case ev.Pong():
            return "-- pong\n"
        case ev.Notice():
            return _notice(event)
        case ev.Error():
            return _lines("!! ", event.message) + _help_lines(event.resources)
        case ev.Bye():
            return f"*** goodbye ({event.reason.replace('_', ' ')})\n"
        case ev.Matched():
            return _matched(event)
        case ev.Queue():
            return _queue(event)
        case ev.Ended():
            return f"-- the private chat #{event.room} ended ({event.reason.replace('_', ' ')})\n"
        case ev.Report():
            return _report(event)
        case ev.Alert() if event.kind == "crisis":
            text = _tame(event.text)
            return _lines(f"*** [alert] {event.name} in #{event.room} may need help: ", text)
        case ev.Alert() if event.kind == "waiting":
            return _lines("*** [alert] ", event.text)
        case ev.Alert():
            where = f" in #{event.room}" if event.room else ""
            return _lines(f"*** [alert {event.kind}] {event.name}{where}: ", event.text)
    return None
