"""Slash commands: one table, name -> how to build the Request, usage, help, who may use it.

The text interface and `say {text: "/..."}` both go through `parse_command`, so a command
behaves the same everywhere, and /help is generated from the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import requests as rq

MAX_MINUTES = 60 * 24 * 30  # the longest mute, ban or shadow-mute: 30 days


class UsageError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    help: str
    build: Callable[[str, str | None], rq.Request]  # (argument text, current room) -> request
    role: str | None = None  # None: everyone; "listener" / "mod": staff only


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


def _report(arg: str, room: str | None) -> rq.Report:
    name, _, reason = arg.partition(" ")
    # Names have spaces: "/report Quiet Otter spam" - try the two-word form first.
    words = arg.split()
    if len(words) >= 2:
        name, reason = " ".join(words[:2]), " ".join(words[2:])
    return rq.Report(name=_one(name, "NAME"), reason=reason, room=room)


def _mute(arg: str) -> rq.Mute:
    name, minutes = _minutes(arg)
    return rq.Mute(name=name, minutes=minutes)


def _ban(arg: str) -> rq.Ban:
    name, minutes = _minutes(arg)
    return rq.Ban(name=name, minutes=minutes)


def _shadow(arg: str) -> rq.Shadow:
    name, minutes = _minutes(arg)
    return rq.Shadow(name=name, minutes=minutes)


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "help",
            "/help [COMMAND]",
            "list commands, or explain one",
            lambda a, r: rq.Help(topic=a or None),
        ),
        Command(
            "nick",
            "/nick NAME",
            "change your anonymous name",
            lambda a, r: rq.Nick(name=_one(a, "NAME")),
        ),
        Command(
            "me",
            "/me TEXT",
            "say something as an action: * Quiet Otter waves",
            lambda a, r: rq.Me(text=_one(a, "TEXT"), room=r),
        ),
        Command(
            "join",
            "/join ROOM",
            "join (or switch to) a room",
            lambda a, r: rq.Join(room=_one(a, "ROOM")),
        ),
        Command(
            "leave",
            "/leave [ROOM]",
            "leave a room (default: the current one)",
            lambda a, r: rq.Leave(room=a or r),
        ),
        Command(
            "rooms", "/rooms", "list the rooms and how many are in each", lambda a, r: rq.Rooms()
        ),
        Command("who", "/who [ROOM]", "who is in a room", lambda a, r: rq.Who(room=a or r)),
        Command(
            "ignore",
            "/ignore NAME",
            "stop seeing someone's messages",
            lambda a, r: rq.Ignore(name=_one(a, "NAME")),
        ),
        Command(
            "unignore",
            "/unignore NAME",
            "see someone's messages again",
            lambda a, r: rq.Unignore(name=_one(a, "NAME")),
        ),
        Command("report", "/report NAME REASON", "tell the moderators about someone", _report),
        Command(
            "resources",
            "/resources [REGION]",
            "crisis help lines (e.g. /resources UK)",
            lambda a, r: rq.Resources(region=a or None),
        ),
        Command(
            "talk",
            "/talk",
            "talk one-to-one with a volunteer listener (again: cancel)",
            lambda a, r: rq.Talk(),
        ),
        Command(
            "listen",
            "/listen on|off",
            "listeners: be available for one-to-one chats",
            lambda a, r: _listen(a),
            role="listener",
        ),
        Command(
            "handoff",
            "/handoff [NAME]",
            "listeners: hand this one-to-one chat to another listener",
            lambda a, r: rq.Handoff(room=r, name=a or None),
            role="listener",
        ),
        Command(
            "auth",
            "/auth TOKEN",
            "sign in as a listener or moderator",
            lambda a, r: rq.Auth(token=_one(a, "TOKEN")),
        ),
        Command(
            "forget",
            "/forget",
            "end your session now and leave no way back into it",
            lambda a, r: rq.Forget(),
        ),
        Command("quit", "/quit", "leave", lambda a, r: rq.Quit()),
        Command(
            "kick",
            "/kick NAME",
            "disconnect someone",
            lambda a, r: rq.Kick(name=_one(a, "NAME")),
            role="mod",
        ),
        Command(
            "mute",
            "/mute NAME MINUTES",
            "silence someone for a while",
            lambda a, r: _mute(a),
            role="mod",
        ),
        Command(
            "ban",
            "/ban NAME MINUTES",
            "keep someone out for a while",
            lambda a, r: _ban(a),
            role="mod",
        ),
        Command(
            "shadow",
            "/shadow NAME MINUTES",
            "shadow-mute: their messages reach only themselves, without telling them",
            lambda a, r: _shadow(a),
            role="mod",
        ),
        Command(
            "unban",
            "/unban NAME",
            "lift a ban, mute or shadow-mute",
            lambda a, r: rq.Unban(name=_one(a, "NAME")),
            role="mod",
        ),
        Command(
            "announce",
            "/announce TEXT",
            "a message to every room",
            lambda a, r: rq.Announce(text=_one(a, "TEXT")),
            role="mod",
        ),
        Command(
            "slow",
            "/slow ROOM SECONDS",
            "slow mode for a room (0: off)",
            lambda a, r: _slow(a),
            role="mod",
        ),
        Command(
            "lock",
            "/lock ROOM",
            "only people already there may speak",
            lambda a, r: rq.Lock(room=_one(a, "ROOM")),
            role="mod",
        ),
        Command(
            "unlock",
            "/unlock ROOM",
            "undo /lock",
            lambda a, r: rq.Unlock(room=_one(a, "ROOM")),
            role="mod",
        ),
        Command("reports", "/reports", "recent reports", lambda a, r: rq.Reports(), role="mod"),
        Command(
            "queue",
            "/queue",
            "how many wait for a listener, how many one-to-one chats are active",
            lambda a, r: rq.QueueStatus(),
            role="mod",
        ),
    )
}

ROLE_RANK = {None: 0, "listener": 1, "mod": 2}


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


def help_text(role: str | None, topic: str | None = None) -> str:
    rank = ROLE_RANK.get(role, 0)
    visible = [c for c in COMMANDS.values() if ROLE_RANK[c.role] <= rank]
    if topic:
        command = COMMANDS.get(topic.lstrip("/").lower())
        if command is None or command not in visible:
            return f"no command /{topic.lstrip('/')}; try /help"
        return f"{command.usage}: {command.help}"
    width = max(len(c.usage) for c in visible)
    lines = ["Commands (a line without / is said to your current room; //text says /text):"]
    lines += [f"  {c.usage.ljust(width)}  {c.help}" for c in visible]
    return "\n".join(lines)
