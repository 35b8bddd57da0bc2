"""What each core event looks like to an IRC client.

Room life is IRC's own vocabulary (PRIVMSG, JOIN, PART, NICK, 353/366, 322); replies and
errors are the numerics of the command that caused them (found through the request's
`ref`); everything ChatSupport says that IRC has no word for (help, crisis help lines,
queue updates, reports, alerts) is a NOTICE from the service nick `ChatSupport`, which
clients show in the window in front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core import events as ev
from ...core.rooms import is_private
from ...core.vocabulary import ReplayCut
from ..render_text import queue_outlook
from . import actions as a
from . import numerics as n
from .history import HistoryQuery, select, targets
from .message import split_utf8
from .nicks import SERVICE, to_nick
from .render import HOST, SERVICE_PREFIX, USER, irc_time, message_lines, prefix

if TYPE_CHECKING:
    from .connection import IrcConnection

ISUPPORT_PER_LINE = 13
MOTD = (
    "ChatSupport: a quiet place to talk. You are anonymous here: nobody sees your address.",
    "Rooms are channels (/join #lobby). /list shows them.",
    f"/msg {SERVICE} help lists ChatSupport's own commands (also as /quote HELP).",
    "/quote TALK asks for a volunteer listener to talk with one-to-one.",
    f"If you are in danger, /msg {SERVICE} resources shows help lines near you.",
)
MARKS = {"mod": "@", "listener": "+"}
JOIN_REFUSED = {"forbidden": n.ERR_INVITEONLYCHAN, "banned": n.ERR_BANNEDFROMCHAN}
REASONS = {"too_slow": "too slow: you were not reading fast enough"}


# ---- registration ---------------------------------------------------------------------------
def isupport(conn: IrcConnection) -> list[str]:
    s = conn.settings
    return [
        "CASEMAPPING=ascii",
        f"CHANLIMIT=#:{s.max_rooms}",
        "CHANMODES=bq,,,mnt",
        "CHANNELLEN=33",
        "CHANTYPES=#",
        f"CHATHISTORY={s.history_limit}",
        "KICKLEN=390",
        "MODES=4",
        "MSGREFTYPES=msgid,timestamp",
        f"NETWORK={s.network}",
        f"NICKLEN={s.max_name + 1}",
        "PREFIX=(ov)@+",
        "TARGMAX=JOIN:,KICK:,NAMES:,PART:,PRIVMSG:4,NOTICE:4",
        "TOPICLEN=0",
        "UTF8ONLY",
    ]


def burst(conn: IrcConnection) -> None:
    """001-005 and the MOTD; then why the nick asked for was not given, and how to resume."""
    s = conn.settings
    conn.numeric(n.RPL_WELCOME, f"Welcome to {s.network}, a quiet place to talk, {conn.nick}")
    conn.numeric(n.RPL_YOURHOST, f"Your host is {s.server}, running version {s.version}")
    conn.numeric(n.RPL_CREATED, f"This server was created {s.created}")
    conn.numeric(n.RPL_MYINFO, s.server, s.version, "i", "bmnqt", "bq")
    tokens = isupport(conn)
    for start in range(0, len(tokens), ISUPPORT_PER_LINE):
        chunk = tokens[start : start + ISUPPORT_PER_LINE]
        conn.numeric(n.RPL_ISUPPORT, *chunk, "are supported by this server")
    motd(conn)
    refusal, wanted = conn.nick_refusal, conn.wanted or ""
    if refusal is not None:
        code = n.ERR_NICKNAMEINUSE if refusal.code == "name_taken" else n.ERR_ERRONEUSNICKNAME
        conn.numeric(code, wanted, refusal.message)
        conn.notice(
            f"You asked for the nick {wanted}: {refusal.message}. You are {conn.nick} "
            "instead, a name nobody else has; /nick NAME chooses another."
        )
    if conn.resumed:
        conn.notice(f"Welcome back, {conn.nick}.")
    elif conn.welcome is not None:
        minutes = conn.settings.retention_minutes
        conn.notice(
            f"To come back as {conn.nick} after a lost connection (within {minutes} minutes) "
            f"with what you missed, connect with the server password resume:"
            f"{conn.welcome.session} (keep it to yourself)."
        )


def motd(conn: IrcConnection) -> None:
    conn.numeric(n.RPL_MOTDSTART, f"- {conn.settings.server} Message of the day -")
    for line in MOTD:
        conn.numeric(n.RPL_MOTD, f"- {line}")
    conn.numeric(n.RPL_ENDOFMOTD, "End of /MOTD command.")


# ---- events ---------------------------------------------------------------------------------
def render(conn: IrcConnection, event: ev.Event) -> None:
    handler = HANDLERS.get(type(event))
    if handler is not None:
        handler(conn, event)


def _message(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Message)
    conn.wrote(event.room, event.id)
    if event.uid == conn.uid and event.ref is not None and "echo-message" not in conn.caps:
        return  # their own line, live: the client showed it already
    time_tag, id_tag = conn.message_tags()
    if conn.replaying is not None or conn.resuming:
        batch = _replay_batch(conn, event.room)
        data = message_lines(event, time_tag, id_tag, conn.settings.server, batch)
    else:
        data = conn.codec.message(event, time_tag, id_tag)
    conn.outputs.append(data)


def _replay_batch(conn: IrcConnection, room: str) -> str | None:
    """A resume's replay comes as one `chathistory` batch per room."""
    if conn.replay_room == room:
        return conn.replaying
    conn.batch_close(conn.replaying)
    conn.replay_room = room
    conn.replaying = conn.batch_open("chathistory", "#" + room)
    return conn.replaying


def _presence(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Presence)
    if event.uid == conn.uid:
        return
    channel, tags = "#" + event.room, conn.time_tags()
    if event.event == "join":
        conn.send_line("JOIN", channel, source=prefix(event.name), tags=tags)
    elif event.event == "leave":
        conn.send_line("PART", channel, source=prefix(event.name), tags=tags)
    elif event.event in ("away", "back"):  # as the text interface says it, to the channel
        state = "is away" if event.event == "away" else "is back"
        conn.send_line("NOTICE", channel, f"{to_nick(event.name)} {state}", source=SERVICE_PREFIX)
    elif event.event == "nick" and event.old:
        rename = (event.uid, event.old, event.name)
        if rename != conn.last_rename:  # one NICK line, however many rooms they share
            conn.last_rename = rename
            conn.send_line("NICK", to_nick(event.name), source=prefix(event.old), tags=tags)


def _deleted(conn: IrcConnection, event: ev.Event) -> None:
    """No IRC client can take a line back: say so in the channel, as the text interface does."""
    assert isinstance(event, ev.Deleted)
    by = " by a moderator" if event.moderated else ""
    text = f"a message from {to_nick(event.name)} was deleted{by}"
    conn.send_line("NOTICE", "#" + event.room, text, source=SERVICE_PREFIX)


def _joined(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Joined)
    if event.room in conn.channels:
        return  # already there (a JOIN of a channel one is in changes nothing)
    _enter(conn, event.room, event.members)


def _enter(conn: IrcConnection, room: str, members: list[ev.Member]) -> None:
    conn.channels.add(room)
    conn.send_line("JOIN", "#" + room, source=conn.source, tags=conn.time_tags())
    names(conn, room, members)


def names(conn: IrcConnection, room: str, members: list[ev.Member]) -> None:
    """353 lines (cut to fit 512 bytes) and 366."""
    channel, symbol = "#" + room, "@" if is_private(room) else "="
    listed = [_member_nick(conn, m) for m in members]
    overhead = len(f":{conn.settings.server} 353 {conn.me} {symbol} {channel} :".encode())
    for chunk in split_utf8(" ".join(listed), 510 - overhead):
        if chunk:
            conn.numeric(n.RPL_NAMREPLY, symbol, channel, chunk)
    conn.numeric(n.RPL_ENDOFNAMES, channel, "End of /NAMES list")


def _member_nick(conn: IrcConnection, member: ev.Member) -> str:
    if member.uid == conn.uid:  # a list taken before a rename or sign-in: what is true now
        return MARKS.get(conn.role or "", "") + conn.nick
    return MARKS.get(member.role or "", "") + to_nick(member.name)


def _who(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Who)
    kind, _ = a.ref_kind(event.ref)
    channel = "#" + event.room
    if kind == "NAMES":
        names(conn, event.room, event.members)
    elif kind == "WHO":
        for member in event.members:
            marked = _member_nick(conn, member)
            nick = marked.lstrip("@+")
            flags = "H" + marked[: len(marked) - len(nick)]
            server = conn.settings.server
            conn.numeric(
                n.RPL_WHOREPLY, channel, USER, HOST, server, nick, flags,
                "0 anonymous",
            )  # fmt: skip
        conn.numeric(n.RPL_ENDOFWHO, channel, "End of /WHO list")
    else:
        listed = ", ".join(_member_nick(conn, m) for m in event.members)
        conn.notice(f"In {channel} ({len(event.members)}): {listed}")


def _rooms(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Rooms)
    conn.numeric(n.RPL_LISTSTART, "Channel", "Users  Name")
    for room in event.rooms:
        conn.numeric(n.RPL_LIST, "#" + room.name, str(room.count), "")
    conn.numeric(n.RPL_LISTEND, "End of /LIST")


def _left(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Left)
    _part(conn, event.room)


def _part(conn: IrcConnection, room: str) -> None:
    if room in conn.channels:
        conn.channels.discard(room)
        conn.send_line("PART", "#" + room, source=conn.source, tags=conn.time_tags())


def _notice(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Notice)
    kind, _ = a.ref_kind(event.ref)
    if kind == a.SASL:
        conn.sasl_result(event)
    elif event.kind == "auth":
        conn.role = event.name
        conn.notice(event.text)
    elif event.kind == "nick" and event.name:
        old = conn.source
        conn.name, conn.nick = event.name, to_nick(event.name)
        if old != conn.source:
            conn.send_line("NICK", conn.nick, source=old)
    elif event.kind in ("announce", "unavailable", "available"):  # the server itself
        conn.notice(event.text, source=conn.settings.server)
    elif event.kind == "help":
        conn.notice(
            f"On IRC, send these as /msg {SERVICE} COMMAND or /quote COMMAND, without the "
            "slash; rooms are channels (/join #lobby, /part, /list, /names), /me works."
        )
        conn.notice(event.text)
    else:
        text = event.text
        for resource in event.resources or ():
            text += "\n" + str(resource.get("line") or resource.get("name"))
        conn.notice(text)


def _matched(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Matched)
    me = ev.Member(conn.uid, conn.name)
    if event.room not in conn.channels:
        _enter(conn, event.room, [me, event.partner])
    partner = to_nick(event.partner.name)
    conn.notice(
        f"You are now talking privately with {partner} in #{event.room}; only the two of "
        f"you are there. /part #{event.room} ends it."
    )
    if event.note:
        conn.notice(f"While waiting they wrote: {event.note}")


def _queue(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Queue)
    conn.notice(f"You are number {event.position} in the queue for a listener.")
    outlook = queue_outlook(event)
    if outlook:
        conn.notice(outlook[0].upper() + outlook[1:] + ".")


def _ended(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Ended)
    conn.notice(f"The private chat #{event.room} ended ({event.reason.replace('_', ' ')}).")
    _part(conn, event.room)


def _report(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Report)
    lines = [f"[report {event.id}] {to_nick(event.name)} in #{event.room}: {event.reason}"]
    for message in event.evidence:
        mark = ">" if message is event.evidence[-1] else " "
        lines += [f" {mark} <{to_nick(message.name)}> {line}" for line in message.text.split("\n")]
    conn.notice("\n".join(lines))


def _alert(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Alert)
    who = to_nick(event.name) + (f" in #{event.room}" if event.room else "")
    if event.kind == "crisis":
        conn.notice(f"[alert] {who} may need help: {event.text}")
    elif event.kind == "waiting":  # someone is waiting for a listener: nobody named
        conn.notice(f"[alert] {event.text}")
    else:
        conn.notice(f"[alert {event.kind}] {who}: {event.text}")


# Why a replay left something out (`resumed.complete` false), by its `reason`.
REPLAY_GAPS: dict[ReplayCut | None, str] = {
    None: "; some were older than the retention window and are gone",
    "overtaken": "; more came in meanwhile than could wait, so some are not shown here",
    "unavailable": "; the rest could not be read just now",
}


def _resumed(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Resumed)
    conn.batch_close(conn.replaying)
    conn.replaying, conn.replay_room, conn.resuming = None, None, False
    if event.missed or not event.complete:
        count = "1 message" if event.missed == 1 else f"{event.missed} messages"
        gone = "" if event.complete else REPLAY_GAPS[event.reason]
        conn.notice(f"Caught up: {count} you missed{gone}.")


def _bye(conn: IrcConnection, event: ev.Event) -> None:
    assert isinstance(event, ev.Bye)
    conn.fatal(REASONS.get(event.reason, event.reason.replace("_", " ")))


def _error(conn: IrcConnection, event: ev.Event) -> None:
    """An error as the numeric of the command that caused it; a NOTICE where IRC has none."""
    assert isinstance(event, ev.Error)
    kind, target = a.ref_kind(event.ref)
    channel, code, text = "#" + target, event.code, event.message
    match kind:
        case a.SASL:
            conn.sasl_result(event)
        case "NICK" | a.REG_NICK:
            numeric = n.ERR_NICKNAMEINUSE if code == "name_taken" else n.ERR_ERRONEUSNICKNAME
            conn.numeric(numeric, target or conn.nick, text)
        case "JOIN" if code in ("forbidden", "banned", "bad_request"):
            conn.numeric(JOIN_REFUSED.get(code, n.ERR_TOOMANYCHANNELS), channel, text)
        case "PART":
            conn.numeric(n.ERR_NOTONCHANNEL, channel, text)
        case "PRIVMSG":
            conn.numeric(n.ERR_CANNOTSENDTOCHAN, channel, text)
        case "NAMES":
            conn.numeric(n.RPL_ENDOFNAMES, channel, "End of /NAMES list")
        case "WHO":
            conn.numeric(n.RPL_ENDOFWHO, channel, "End of /WHO list")
        case "KICK" | "MODE" if code == "forbidden":
            conn.numeric(n.ERR_CHANOPRIVSNEEDED, channel, text)
        case "SVC" if code == "forbidden":
            conn.numeric(n.ERR_NOPRIVILEGES, text)
        case a.PASS:
            conn.notice(f"The server password was not accepted ({text}); you are anonymous.")
        case _:
            conn.notice(text)


HANDLERS = {
    ev.Message: _message,
    ev.Presence: _presence,
    ev.Deleted: _deleted,
    ev.Joined: _joined,
    ev.Left: _left,
    ev.Who: _who,
    ev.Rooms: _rooms,
    ev.Notice: _notice,
    ev.Matched: _matched,
    ev.Queue: _queue,
    ev.Ended: _ended,
    ev.Report: _report,
    ev.Alert: _alert,
    ev.Resumed: _resumed,
    ev.Bye: _bye,
    ev.Error: _error,
}


# ---- history --------------------------------------------------------------------------------
def history_reply(
    conn: IrcConnection, query: HistoryQuery, by_room: dict[str, list[ev.Message]]
) -> None:
    """The answer to CHATHISTORY: a `chathistory` batch (or the lines alone without batch)."""
    if query.subcommand == "TARGETS":
        name = conn.batch_open("draft/chathistory-targets")
        tags = {"batch": name} if name else {}
        for room, ts in targets(query, by_room):
            conn.send_line(
                "CHATHISTORY", "TARGETS", "#" + room, f"timestamp={irc_time(ts)}", tags=tags
            )
        conn.batch_close(name)
        return
    room = query.rooms[0]
    chosen = select(query, by_room.get(room, []))
    name = conn.batch_open("chathistory", "#" + room)
    time_tag, id_tag = conn.message_tags()
    for message in chosen:
        conn.outputs.append(message_lines(message, time_tag, id_tag, conn.settings.server, name))
    conn.batch_close(name)
