"""Slash commands: one table, name -> the Request it builds, usage and help.

The text interface and `say {text: "/..."}` both go through `parse_command`, once, in the
Chat's dispatcher, so a command behaves the same everywhere: who may send it and what it
costs are what its request's handler declares (`@handles(..., role=, cost=)`), as for the
same request sent as JSON. /help is generated from this table and those declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import requests as rq
from .vocabulary import BAN_SCOPES

MAX_MINUTES = 60 * 24 * 30  # the longest mute, ban or shadow-mute: 30 days


class UsageError(ValueError):
    pass


def type_name(kind: type[rq.Request]) -> str:
    """A request's JSON `type`, which is also its slash command's name."""
    return str(kind.__struct_config__.tag)


@dataclass(frozen=True, slots=True)
class Command:
    request: type[rq.Request]  # what it builds; `/name` is that request's JSON `type`
    usage: str
    help: str
    build: Callable[[str, str | None], rq.Request]  # (argument text, current room) -> request

    @property
    def name(self) -> str:
        return type_name(self.request)


def _one_argument(kind: type[rq.Request], usage: str, help: str, field: str) -> Command:
    """`/command WORDS`: the rest of the line, which must be there, is the request's `field`
    (`/kick Quiet Otter` -> Kick(name="Quiet Otter"); without it: "missing NAME")."""

    def build(arg: str, room: str | None) -> rq.Request:
        return kind(**{field: _one(arg, field.upper())})

    return Command(kind, usage, help, build)


def _optional_argument(kind: type[rq.Request], usage: str, help: str, field: str) -> Command:
    """`/command [WORDS]`: the rest of the line is the request's `field`, None if empty."""

    def build(arg: str, room: str | None) -> rq.Request:
        return kind(**{field: arg or None})

    return Command(kind, usage, help, build)


def _no_argument(kind: type[rq.Request], usage: str, help: str) -> Command:
    """`/command`: whatever follows it is not read."""
    return Command(kind, usage, help, lambda arg, room: kind())


def _for_minutes(kind: type[rq.Mute] | type[rq.Shadow], usage: str, help: str) -> Command:
    """`/command NAME MINUTES`: a sanction for a while."""

    def build(arg: str, room: str | None) -> rq.Request:
        name, minutes = _minutes(arg)
        return kind(name=name, minutes=minutes)

    return Command(kind, usage, help, build)


def _one(arg: str, what: str) -> str:
    if not arg:
        raise UsageError(f"missing {what}")
    return arg


def _name_and_rest(arg: str, what: str) -> tuple[str, str]:
    """`NAME REST`: names contain spaces, so the last word is REST only where one is expected."""
    name, _, rest = arg.rpartition(" ")
    if not name:
        raise UsageError(f"missing {what}")
    return name.strip(), rest.strip()


def _minutes(arg: str) -> tuple[str, float]:
    name, rest = _name_and_rest(arg, "NAME MINUTES")
    try:
        minutes = float(rest)
    except ValueError:
        raise UsageError("MINUTES must be a number") from None
    if not 0 < minutes <= MAX_MINUTES:
        raise UsageError(f"MINUTES must be between 0 and {MAX_MINUTES}")
    return name, minutes


def _listen(arg: str) -> rq.Listen:
    if arg.lower() not in ("on", "off"):
        raise UsageError("say /listen on or /listen off")
    return rq.Listen(on=arg.lower() == "on")


def _slow(arg: str) -> rq.Slow:
    room, seconds = _name_and_rest(arg, "ROOM SECONDS")
    try:
        return rq.Slow(room=room, seconds=float(seconds))
    except ValueError:
        raise UsageError("SECONDS must be a number") from None


def _reports(arg: str) -> rq.Reports:
    words = arg.split()
    request = rq.Reports()
    if words and words[0] in ("open", "handled"):
        request.state = words.pop(0)
    if len(words) >= 2 and words[-2] == "before":
        request.before = words.pop()
        words.pop()
    if len(words) > 1:
        raise UsageError("one ROOM at most")
    request.room = words[0].lstrip("#") if words else None
    return request


def _report(arg: str, room: str | None) -> rq.Report:
    name, _, reason = arg.partition(" ")
    # Names have spaces: "/report Quiet Otter spam" - try the two-word form first.
    words = arg.split()
    if len(words) >= 2:
        name, reason = " ".join(words[:2]), " ".join(words[2:])
    return rq.Report(name=_one(name, "NAME"), reason=reason, room=room)


def _page(word: str) -> int:
    try:
        return int(word)
    except ValueError:
        raise UsageError("PAGE must be a number") from None


def _who(arg: str, room: str | None) -> rq.Who:
    """`/who [ROOM] [PAGE]`: a crowded room's members come a page at a time."""
    words = arg.split()
    if words and words[-1].isdigit():
        return rq.Who(room=" ".join(words[:-1]) or room, page=_page(words[-1]))
    return rq.Who(room=arg or room)


def end_request(arg: str, room: str | None) -> rq.End:
    """`/end` or `/end report REASON` (also IRC's `END #room report REASON`)."""
    word, _, reason = arg.partition(" ")
    if not word:
        return rq.End(room=room)
    if word.lower() != "report":
        raise UsageError("say /end, or /end report REASON")
    return rq.End(room=room, report=reason.strip() or "(no reason given)")


FEEDBACK = {"helpful": "helpful", "not-really": "not_really", "no": "not_really", "skip": "skip"}


def feedback_request(arg: str) -> rq.Feedback:
    answer = FEEDBACK.get(arg.lower())
    if answer is None:
        raise UsageError("say /feedback helpful, /feedback not-really or /feedback skip")
    return rq.Feedback(answer=answer)


def _delete(arg: str, room: str | None) -> rq.Delete:
    if arg:
        raise UsageError("/delete takes nothing after it: it deletes your last message here")
    return rq.Delete(room=room)


def _ban(arg: str) -> rq.Ban:
    """`/ban NAME MINUTES [person|address]`: what it covers, if not the server's default."""
    head, _, last = arg.rpartition(" ")
    scope = next((s for s in BAN_SCOPES if s == last.lower()), None) if head else None
    name, minutes = _minutes(head if scope else arg)
    return rq.Ban(name=name, minutes=minutes, scope=scope)


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        _optional_argument(rq.Help, "/help [COMMAND]", "list commands, or explain one", "topic"),
        _one_argument(rq.Nick, "/nick NAME", "change your anonymous name", "name"),
        Command(
            rq.Me,
            "/me TEXT",
            "say something as an action: * Quiet Otter waves",
            lambda a, r: rq.Me(text=_one(a, "TEXT"), room=r),
        ),
        Command(rq.Delete, "/delete", "delete your last message in this room", _delete),
        _one_argument(rq.Join, "/join ROOM", "join (or switch to) a room", "room"),
        Command(
            rq.Leave,
            "/leave [ROOM]",
            "leave a room (default: the current one)",
            lambda a, r: rq.Leave(room=a or r),
        ),
        Command(
            rq.Rooms,
            "/rooms [PAGE]",
            "list the rooms and how many are in each",
            lambda a, r: rq.Rooms(page=_page(a)) if a else rq.Rooms(),
        ),
        Command(rq.Who, "/who [ROOM] [PAGE]", "who is in a room", _who),
        _one_argument(rq.Ignore, "/ignore NAME", "stop seeing someone's messages", "name"),
        _one_argument(rq.Unignore, "/unignore NAME", "see someone's messages again", "name"),
        Command(rq.Report, "/report NAME REASON", "tell the moderators about someone", _report),
        _optional_argument(
            rq.Resources, "/resources [REGION]", "crisis help lines (e.g. /resources UK)", "region"
        ),
        _optional_argument(
            rq.Region,
            "/region [CODE]",
            "your country, for help lines (e.g. /region GB); kept for this session only",
            "code",
        ),
        _optional_argument(
            rq.Talk,
            "/talk [WHAT'S ON YOUR MIND]",
            "talk one-to-one with a volunteer listener (again, alone: cancel)",
            "note",
        ),
        Command(
            rq.End,
            "/end [report REASON]",
            "end this one-to-one chat (and report the other person)",
            end_request,
        ),
        Command(
            rq.Feedback,
            "/feedback helpful|not-really|skip",
            "after a one-to-one chat: did it help? (counted anonymously)",
            lambda a, r: feedback_request(a),
        ),
        Command(
            rq.Listen,
            "/listen on|off",
            "listeners: be available for one-to-one chats",
            lambda a, r: _listen(a),
        ),
        Command(
            rq.Handoff,
            "/handoff [NAME]",
            "listeners: hand this one-to-one chat to another listener",
            lambda a, r: rq.Handoff(room=r, name=a or None),
        ),
        _one_argument(
            rq.Offer, "/offer NAME", "listeners: offer someone a private chat (they choose)", "name"
        ),
        Command(
            rq.Debrief,
            "/debrief [NOTE]",
            "listeners: ask the moderators for a debrief",
            lambda a, r: rq.Debrief(note=a),
        ),
        _one_argument(rq.Auth, "/auth TOKEN", "sign in as a listener or moderator", "token"),
        _no_argument(rq.Forget, "/forget", "end your session now and leave no way back into it"),
        _no_argument(rq.Quit, "/quit", "leave"),
        _one_argument(rq.Kick, "/kick NAME", "disconnect someone", "name"),
        _for_minutes(rq.Mute, "/mute NAME MINUTES", "silence someone for a while"),
        Command(
            rq.Ban,
            "/ban NAME MINUTES [address]",
            "keep someone out for a while (address: their whole network too, briefly)",
            lambda a, r: _ban(a),
        ),
        _for_minutes(
            rq.Shadow,
            "/shadow NAME MINUTES",
            "shadow-mute: their messages reach only themselves, without telling them",
        ),
        _one_argument(rq.Unban, "/unban NAME", "lift a ban, mute or shadow-mute", "name"),
        _one_argument(rq.Announce, "/announce TEXT", "a message to every room", "text"),
        Command(
            rq.Slow,
            "/slow ROOM SECONDS",
            "slow mode for a room (0: off)",
            lambda a, r: _slow(a),
        ),
        _one_argument(rq.Lock, "/lock ROOM", "only people already there may speak", "room"),
        _one_argument(rq.Unlock, "/unlock ROOM", "undo /lock", "room"),
        Command(
            rq.Reports,
            "/reports [handled] [ROOM] [before ID]",
            "reports, newest first, a page at a time",
            lambda a, r: _reports(a),
        ),
        _one_argument(rq.Handled, "/handled ID", "mark a report as seen to", "id"),
        _no_argument(
            rq.QueueStatus,
            "/queue",
            "how many wait for a listener, how many one-to-one chats are active",
        ),
    )
}


def is_command(text: str) -> bool:
    """`/name ...` is a command; `//text` says `/text`."""
    return text.startswith("/") and not text.startswith("//")


def parse_command(text: str, room: str | None, ref: str | None = None) -> rq.Request:
    """`/name args` -> Request. Raises UsageError with a message fit to show the person."""
    name, _, arg = text[1:].partition(" ")
    command = COMMANDS.get(name.lower())
    if command is None:
        raise UsageError(f"unknown command /{name}; try /help")
    try:
        request = command.build(arg.strip(), room)
    except UsageError as error:
        raise UsageError(f"{error} (usage: {command.usage})") from None
    request.ref = ref
    return request


def help_text(may: Callable[[type[rq.Request]], bool], topic: str | None = None) -> str:
    """The commands someone may use (`may(request type)`), or the one named by `topic`."""
    visible = [c for c in COMMANDS.values() if may(c.request)]
    if topic:
        command = COMMANDS.get(topic.lstrip("/").lower())
        if command is None or command not in visible:
            return f"no command /{topic.lstrip('/')}; try /help"
        return f"{command.usage}: {command.help}"
    width = max(len(c.usage) for c in visible)
    lines = ["Commands (a line without / is said to your current room; //text says /text):"]
    lines += [f"  {c.usage.ljust(width)}  {c.help}" for c in visible]
    return "\n".join(lines)
