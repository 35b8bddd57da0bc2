"""IRC commands: a table, name -> handler, parameters needed, registered or not.

Commands that change anything become core requests (`conn.core`), each with a `ref`
naming the command, so the reply comes back as that command's numeric (replies.py).
What IRC asks of the server alone (CAP, PING, MODE queries, TOPIC, AWAY) is answered here.
ChatSupport's own commands are IRC commands too (`/quote TALK`, `/quote MUTE nick 10`;
irssi and HexChat send unknown /commands as they are), and the same words sent to the
service (`/msg ChatSupport talk`) do the same (`PRODUCT`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core import requests as rq
from ...core.commands import UsageError, end_request, feedback_request
from ...core.rooms import normalise_room, valid_room
from . import numerics as n
from .actions import CAPS, Fetch, Spec, ref
from .history import QueryError, parse_query
from .message import Line, strip_formatting
from .nicks import SERVICE, same_nick, to_name
from .render import HOST, USER
from .replies import motd

if TYPE_CHECKING:
    from .connection import IrcConnection

COMMANDS: dict[str, Spec] = {}


def command(
    name: str, min_params: int = 0, *, registered: bool = True
) -> Callable[[Callable[[IrcConnection, Line], None]], Callable[[IrcConnection, Line], None]]:
    def register(
        handler: Callable[[IrcConnection, Line], None],
    ) -> Callable[[IrcConnection, Line], None]:
        COMMANDS[name] = Spec(handler, min_params, registered)
        return handler

    return register


def _rooms(param: str) -> list[str]:
    return [normalise_room(r) for r in param.split(",") if r]


# ---- registration ---------------------------------------------------------------------------
@command("CAP", 1, registered=False)
def cap(conn: IrcConnection, line: Line) -> None:
    sub = line.params[0].upper()
    if sub == "LS":
        if not conn.registered:
            conn.negotiating = True
        v302 = line.param(1).isdigit() and int(line.param(1)) >= 302
        offered = " ".join(f"{k}={v}" if v and v302 else k for k, v in sorted(CAPS.items()))
        conn.send_line("CAP", conn.me, "LS", offered)
    elif sub == "LIST":
        conn.send_line("CAP", conn.me, "LIST", " ".join(sorted(conn.caps)))
    elif sub == "REQ":
        if not conn.registered:
            conn.negotiating = True
        asked = line.param(1).split()
        names = [a.removeprefix("-") for a in asked]
        if not asked or any(name not in CAPS for name in names):
            conn.send_line("CAP", conn.me, "NAK", line.param(1))
            return
        caps = set(conn.caps)  # replaced, not mutated: most connections keep the shared empty one
        for item in asked:
            if item.startswith("-"):
                caps.discard(item[1:])
            else:
                caps.add(item)
        conn.caps = frozenset(caps)
        conn.send_line("CAP", conn.me, "ACK", " ".join(asked))
    elif sub == "END":
        if conn.registered:
            return
        conn.negotiating = False
        conn.maybe_open()
        conn.maybe_burst()
    else:
        conn.numeric("410", sub, "Invalid CAP command")


@command("PASS", 1, registered=False)
def pass_(conn: IrcConnection, line: Line) -> None:
    """`PASS resume:TOKEN` comes back as before; any other password is a staff token."""
    if conn.opened:
        conn.numeric(n.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    for word in " ".join(line.params).split():
        if word.startswith("resume:"):
            conn.resume_token = word.removeprefix("resume:")
        else:
            conn.pass_token = word


@command("NICK", registered=False)
def nick(conn: IrcConnection, line: Line) -> None:
    wanted = line.param(0).strip()
    if not wanted:
        conn.numeric(n.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    if not conn.registered:
        conn.wanted = wanted
        conn.maybe_open()
        return
    if wanted == conn.nick:
        return
    conn.core(rq.Nick(name=to_name(wanted), ref=ref("NICK", wanted)))


@command("USER", 4, registered=False)
def user(conn: IrcConnection, line: Line) -> None:
    """Registration needs it; what it says (ident, real name) is neither kept nor shown."""
    if conn.user_given:
        conn.numeric(n.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    conn.user_given = True
    conn.maybe_open()


@command("AUTHENTICATE", 1, registered=False)
def authenticate(conn: IrcConnection, line: Line) -> None:
    data = line.params[0]
    if conn.sasl in ("sent", "done"):
        conn.numeric(n.ERR_SASLALREADY, "You have already authenticated")
    elif data == "*":
        conn.sasl, conn.sasl_data = None, ""
        conn.numeric(n.ERR_SASLABORTED, "SASL authentication aborted")
    elif conn.sasl == "PLAIN":
        conn.sasl_step(data)
    elif data.upper() == "PLAIN":
        conn.sasl = "PLAIN"
        conn.send_line("AUTHENTICATE", "+", source="")
    else:
        conn.numeric(n.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
        conn.numeric(n.ERR_SASLFAIL, "SASL authentication failed")


@command("PING", 1, registered=False)
def ping(conn: IrcConnection, line: Line) -> None:
    conn.send_line("PONG", conn.settings.server, line.params[0])


@command("PONG", registered=False)
def pong(conn: IrcConnection, line: Line) -> None:
    """The answer to the server's PING (`IrcConnection.probe`), if it carries its token."""
    if line.params:
        conn.answered(line.params[-1])


@command("QUIT", registered=False)
def quit_(conn: IrcConnection, line: Line) -> None:
    if conn.opened:
        conn.core(rq.Quit(ref=ref("QUIT")))
    else:
        conn.fatal("quit")


# ---- rooms ---------------------------------------------------------------------------------
@command("JOIN", 1)
def join(conn: IrcConnection, line: Line) -> None:
    if line.params[0] == "0":  # "leave every channel"
        for room in sorted(conn.channels):
            conn.core(rq.Leave(room=room, ref=ref("PART", room)))
        return
    for raw in line.params[0].split(","):
        room = normalise_room(raw)
        if not raw.startswith("#") or not valid_room(room):
            conn.numeric(n.ERR_BADCHANNAME, raw, "Channel names are # and 1-32 of a-z, 0-9, -")
        elif room not in conn.channels:
            conn.core(rq.Join(room=room, ref=ref("JOIN", room)))


@command("PART", 1)
def part(conn: IrcConnection, line: Line) -> None:
    for room in _rooms(line.params[0]):
        conn.core(rq.Leave(room=room, ref=ref("PART", room)))


@command("NAMES")
def names(conn: IrcConnection, line: Line) -> None:
    if not line.params:
        conn.numeric(n.RPL_ENDOFNAMES, "*", "End of /NAMES list")
    for room in _rooms(line.param(0)):
        conn.core(rq.Who(room=room, ref=ref("NAMES", room)))


@command("WHO")
def who(conn: IrcConnection, line: Line) -> None:
    mask = line.param(0, "*")
    if mask.startswith("#") and valid_room(normalise_room(mask)):
        conn.core(rq.Who(room=normalise_room(mask), ref=ref("WHO", normalise_room(mask))))
    else:  # people are not looked up one by one: their rooms list them
        conn.numeric(n.RPL_ENDOFWHO, mask, "End of /WHO list")


@command("WHOIS", 1)
def whois(conn: IrcConnection, line: Line) -> None:
    target = line.params[-1]
    if same_nick(target, conn.nick):
        conn.numeric(n.RPL_WHOISUSER, conn.nick, USER, HOST, "*", "anonymous")
        conn.numeric(n.RPL_WHOISSERVER, conn.nick, conn.settings.server, "ChatSupport")
    conn.numeric(n.RPL_ENDOFWHOIS, target, "End of /WHOIS list")


@command("LIST")
def list_(conn: IrcConnection, line: Line) -> None:
    conn.core(rq.Rooms(ref=ref("LIST")))


@command("TOPIC", 1)
def topic(conn: IrcConnection, line: Line) -> None:
    channel = line.params[0]
    if len(line.params) > 1:
        conn.numeric(n.ERR_CHANOPRIVSNEEDED, channel, "Rooms have no topics here")
    else:
        conn.numeric(n.RPL_NOTOPIC, channel, "No topic is set")


# ---- talking -------------------------------------------------------------------------------
def _say(conn: IrcConnection, line: Line, *, is_notice: bool) -> None:
    if len(line.params) < 2 or not line.params[1]:
        if not is_notice:
            conn.numeric(n.ERR_NOTEXTTOSEND, "No text to send")
        return
    text = line.params[1]
    action = text.startswith("\x01ACTION") and len(text) > 8
    if text.startswith("\x01") and not action:
        return  # other CTCP (VERSION, PING, ...) is neither relayed nor answered
    if action:
        text = text[8:].removesuffix("\x01")
    text = strip_formatting(text)
    for target in line.params[0].split(","):
        if same_nick(target, SERVICE):
            if not is_notice:
                service(conn, text)
        elif target.startswith("#"):
            _to_room(conn, normalise_room(target), text, action=action)
        elif not is_notice:
            conn.notice(
                "Private messages between people are not available here. "
                "/quote TALK asks for a volunteer listener to talk with one-to-one."
            )


def _to_room(conn: IrcConnection, room: str, text: str, *, action: bool) -> None:
    if not text.strip():
        conn.numeric(n.ERR_NOTEXTTOSEND, "No text to send")
        return
    kind = ref("PRIVMSG", room)
    if action:
        conn.core(rq.Me(text=text, room=room, ref=kind))
    else:  # literal text: a leading / is not a ChatSupport command on IRC
        conn.core(rq.Say(text="/" + text if text.startswith("/") else text, room=room, ref=kind))


@command("PRIVMSG", 1)
def privmsg(conn: IrcConnection, line: Line) -> None:
    _say(conn, line, is_notice=False)


@command("NOTICE", 1)
def notice(conn: IrcConnection, line: Line) -> None:
    """A NOTICE to a channel is said like a PRIVMSG (the core has one kind of message)."""
    _say(conn, line, is_notice=True)


@command("TAGMSG", 1)
def tagmsg(conn: IrcConnection, line: Line) -> None:
    """Typing notifications and reactions are not relayed (the core carries no tags)."""


@command("CHATHISTORY", 1)
def chathistory(conn: IrcConnection, line: Line) -> None:
    try:
        query = parse_query(line.params, conn.channels, conn.settings.history_limit)
    except QueryError as error:
        conn.send_line("FAIL", "CHATHISTORY", error.code, error.context, error.text)
        return
    conn.outputs.append(Fetch(query))


# ---- state of one's own --------------------------------------------------------------------
@command("AWAY")
def away(conn: IrcConnection, line: Line) -> None:
    """Acknowledged; not shown to others (there is no away state in ChatSupport)."""
    if line.param(0):
        conn.numeric(n.RPL_NOWAWAY, "You have been marked as being away")
    else:
        conn.numeric(n.RPL_UNAWAY, "You are no longer marked as being away")


@command("MODE", 1)
def mode(conn: IrcConnection, line: Line) -> None:
    target = line.params[0]
    if not target.startswith("#"):
        if not same_nick(target, conn.nick):
            conn.numeric(n.ERR_USERSDONTMATCH, "Cannot change mode for other users")
        elif len(line.params) == 1:
            conn.numeric(n.RPL_UMODEIS, "+")
        return  # user modes are accepted and ignored
    room = normalise_room(target)
    if len(line.params) == 1:
        conn.numeric(n.RPL_CHANNELMODEIS, target, "+nt")
        return
    _channel_modes(conn, target, room, line.params[1], line.params[2:])


def _channel_modes(
    conn: IrcConnection, target: str, room: str, modes: str, args: list[str]
) -> None:
    """+b/-b ban and unban, +q/-q mute and unmute (by nick or nick!*@* mask), +m/-m lock."""
    adding, pending = True, list(args)
    for char in modes:
        if char in "+-":
            adding = char == "+"
        elif char in "bq":
            if not pending:  # a list query: no masks are listed (bans are by person)
                conn.numeric(n.RPL_ENDOFBANLIST, target, "End of channel ban list")
                continue
            who = to_name(pending.pop(0).partition("!")[0])
            if not adding:
                request: rq.Request = rq.Unban(name=who, ref=ref("MODE", room))
            elif char == "b":
                request = rq.Ban(name=who, ref=ref("MODE", room))
            else:
                request = rq.Mute(name=who, ref=ref("MODE", room))
            conn.core(request)
        elif char == "m":
            lock = rq.Lock if adding else rq.Unlock
            conn.core(lock(room=room, ref=ref("MODE", room)))
        elif char not in "nt":
            conn.numeric(n.ERR_UNKNOWNMODE, char, "is not a mode this server knows")


@command("KICK", 2)
def kick(conn: IrcConnection, line: Line) -> None:
    """KICK disconnects the person (ChatSupport's kick), whatever the channel."""
    room = normalise_room(line.params[0])
    reason = line.param(2)
    for target in line.params[1].split(","):
        conn.core(rq.Kick(name=to_name(target), reason=reason, ref=ref("KICK", room)))


@command("ISON", 1)
def ison(conn: IrcConnection, line: Line) -> None:
    conn.numeric(n.RPL_ISON, "")


@command("USERHOST", 1)
def userhost(conn: IrcConnection, line: Line) -> None:
    mine = [p for p in line.params if same_nick(p, conn.nick)]
    conn.numeric(n.RPL_USERHOST, " ".join(f"{conn.nick}=+{USER}@{HOST}" for _ in mine))


@command("MOTD")
def motd_(conn: IrcConnection, line: Line) -> None:
    motd(conn)


# ---- ChatSupport's own commands -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Product:
    """A ChatSupport command: `words` leading arguments, then (if `text`) the rest as text;
    `nick` marks the first argument as a nick (translated to a name)."""

    build: Callable[[list[str], str], rq.Request]
    words: int = 0
    text: bool = False
    nick: bool = False


def _number(raw: str, default: float) -> float:
    try:
        return float(raw) if raw else default
    except ValueError:
        return -1.0  # the core refuses it with its own message


def _handoff(words: list[str], rest: str) -> rq.Request:
    room = normalise_room(rest) if rest.startswith("#") else None
    name = None if rest.startswith("#") or not rest else to_name(rest)
    return rq.Handoff(room=room, name=name)


PRODUCT: dict[str, Product] = {
    "HELP": Product(lambda w, t: rq.Help(topic=t or None), text=True),
    "TALK": Product(lambda w, t: rq.Talk(note=t or None), text=True),
    "END": Product(lambda w, t: end_request(t, w[0]), 1, text=True),
    "FEEDBACK": Product(lambda w, t: feedback_request(t), text=True),
    "REGION": Product(lambda w, t: rq.Region(code=t or None), text=True),
    "OFFER": Product(lambda w, t: rq.Offer(name=w[0]), 1, nick=True),
    "DEBRIEF": Product(lambda w, t: rq.Debrief(note=t), text=True),
    "LISTEN": Product(lambda w, t: rq.Listen(on=t.lower() != "off"), text=True),
    "AUTH": Product(lambda w, t: rq.Auth(token=t), text=True),
    "FORGET": Product(lambda w, t: rq.Forget()),
    "RESOURCES": Product(lambda w, t: rq.Resources(region=t or None), text=True),
    "ROOMS": Product(lambda w, t: rq.Rooms()),
    "IGNORE": Product(lambda w, t: rq.Ignore(name=w[0]), 1, nick=True),
    "UNIGNORE": Product(lambda w, t: rq.Unignore(name=w[0]), 1, nick=True),
    "REPORT": Product(lambda w, t: rq.Report(name=w[0], reason=t), 1, text=True, nick=True),
    "MUTE": Product(lambda w, t: rq.Mute(name=w[0], minutes=_number(t, 10)), 1, True, True),
    "BAN": Product(lambda w, t: rq.Ban(name=w[0], minutes=_number(t, 60)), 1, True, True),
    "SHADOW": Product(lambda w, t: rq.Shadow(name=w[0], minutes=_number(t, 60)), 1, True, True),
    "UNBAN": Product(lambda w, t: rq.Unban(name=w[0]), 1, nick=True),
    "ANNOUNCE": Product(lambda w, t: rq.Announce(text=t), text=True),
    "SLOW": Product(lambda w, t: rq.Slow(room=w[0], seconds=_number(t, 0)), 1, text=True),
    "LOCK": Product(lambda w, t: rq.Lock(room=w[0]), 1),
    "UNLOCK": Product(lambda w, t: rq.Unlock(room=w[0]), 1),
    "REPORTS": Product(lambda w, t: rq.Reports()),
    "QUEUE": Product(lambda w, t: rq.QueueStatus()),
    "HANDOFF": Product(_handoff, text=True),
}


def run_product(conn: IrcConnection, name: str, args: list[str]) -> None:
    """Build the request from IRC arguments (nicks become names) and send it on."""
    spec = PRODUCT[name]
    if len(args) < spec.words:
        conn.notice(f"{name} needs more: try /msg {SERVICE} help {name.lower()}")
        return
    words = args[: spec.words]
    if spec.nick and words:
        words[0] = to_name(words[0])
    words = [normalise_room(w) if w.startswith("#") else w for w in words]
    rest = " ".join(args[spec.words :]).strip()
    try:
        request = spec.build(words, rest)
    except UsageError as error:  # e.g. `FEEDBACK maybe`: told as on the text interface
        conn.notice(str(error))
        return
    request.ref = ref("SVC", name)
    conn.core(request)


def service(conn: IrcConnection, text: str) -> None:
    """`/msg ChatSupport talk`: the same commands as words."""
    word, _, rest = text.strip().lstrip("/").partition(" ")
    name = word.upper()
    if name not in PRODUCT:
        conn.notice(f"No command {word!r} here; /msg {SERVICE} help lists them.")
        return
    spec = PRODUCT[name]
    args = rest.split(maxsplit=spec.words) if spec.words else ([rest] if rest else [])
    run_product(conn, name, args)


def _product_handler(name: str) -> Callable[[IrcConnection, Line], None]:
    def handler(conn: IrcConnection, line: Line) -> None:
        run_product(conn, name, line.params)

    return handler


for _name in PRODUCT:
    if _name not in COMMANDS:
        COMMANDS[_name] = Spec(_product_handler(_name))
