"""Room messages as IRC lines, encoded once per variant and shared by every recipient.

Fan-out hands the same `Message` object to each member, and what an IRC client receives
depends only on the tags it asked for (`server-time`, `message-tags` for `msgid`), so a
one-entry cache per tag variant turns N encodes into at most four.

Every prefix is `nick!anon@chatsupport/anon` (`prefix`): the host is a fixed cloak, never an
address. A message's `msgid` is `ROOM.ID` (`ROOM.ID.N` for the Nth extra line of a message
that had to be cut), so `draft/chathistory` can find its place again (`message_id`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ...core import events as ev
from .message import MAX_BODY, Line, serialise, split_utf8
from .nicks import SERVICE, to_nick

USER = "anon"
HOST = "chatsupport/anon"
SERVICE_PREFIX = f"{SERVICE}!service@chatsupport"
ACTION = "\x01ACTION "


def prefix(name: str) -> str:
    return f"{to_nick(name)}!{USER}@{HOST}"


def irc_time(ts: float) -> str:
    """`server-time` format: ISO 8601 UTC with milliseconds."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def message_id(msgid: str, room: str) -> int | None:
    """The id inside a `msgid` of `room` (None if it is not one of ours for that room)."""
    head, _, rest = msgid.partition(".")
    number = rest.partition(".")[0]
    if head != room or not number.isdigit():
        return None
    return int(number)


def text_lines(
    source: str, command: str, target: str, text: str, *, action: bool = False
) -> list[str]:
    """`text` as the trailing parameters of as many lines as it needs: one per line of the
    message, each cut to fit 512 bytes with the prefix, so no line can pose as another."""
    overhead = len(f":{source} {command} {target} :".encode()) + (9 if action else 0)
    budget = max(64, MAX_BODY - overhead)
    pieces: list[str] = []
    for line in text.split("\n"):
        pieces.extend(split_utf8(line, budget) if line else [" "])
    if action:
        return [f"{ACTION}{piece}\x01" for piece in pieces]
    return pieces


def message_lines(
    event: ev.Message, time_tag: bool, id_tag: bool, server: str, batch: str | None = None
) -> bytes:
    """A room message: PRIVMSG (CTCP ACTION for /me), an announcement a server NOTICE;
    `batch` marks it as part of a batch (a history replay)."""
    target = "#" + event.room
    if event.kind == "announce":
        source, command, action = server, "NOTICE", False
    else:
        source, command, action = prefix(event.name), "PRIVMSG", event.kind == "me"
    out: list[bytes] = []
    for number, piece in enumerate(text_lines(source, command, target, event.text, action=action)):
        tags: dict[str, str] = {"batch": batch} if batch else {}
        if time_tag:
            tags["time"] = irc_time(event.ts or time.time())
        if id_tag:
            tags["msgid"] = f"{event.room}.{event.id}" + (f".{number + 1}" if number else "")
        out.append(serialise(Line(command, [target, piece], source, tags)))
    return b"".join(out)


class IrcCodec:
    """Shared by every IRC connection of a server: recent messages' bytes per variant.

    Room batches go to each member in turn, all of a turn's messages to one member before
    the next: a cache of the last message alone would miss on every one of them. It keeps
    a turn's worth (a few dozen), and forgets them all when full."""

    __slots__ = ("_cache", "server")
    KEEP = 256

    def __init__(self, server: str) -> None:
        self.server = server
        self._cache: dict[tuple[int, int], tuple[ev.Message, bytes]] = {}

    def message(self, event: ev.Message, time_tag: bool, id_tag: bool) -> bytes:
        key = (id(event), time_tag + 2 * id_tag)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is event:  # held here, so its id is not reused meanwhile
            return hit[1]
        if len(self._cache) >= self.KEEP:
            self._cache.clear()
        data = message_lines(event, time_tag, id_tag, self.server)
        self._cache[key] = (event, data)
        return data
