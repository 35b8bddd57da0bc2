"""The everyday feature: talking, rooms, names, resume, ignore, leaving.

Each handler is a small method declared for its request type (`@handles`); the other
features (moderation, one-to-one matching, ...) declare theirs the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from . import events as ev
from . import lifecycle, names
from . import requests as rq
from .chat import Chat, Refused, hash_token
from .commands import help_text
from .confusables import HelpLines
from .feature import Feature, handles
from .limits import WindowCounter, message_cost
from .names import check_name, claim_keys, name_key
from .people import find_anywhere
from .rooms import is_private, normalise_room, valid_room
from .session import Link, Session
from .text import clean
from .vocabulary import NoticeKind

T = TypeVar("T")


def room_of(link: Link, room: str | None) -> str:
    """The room named (default: the current one), which must be one of theirs."""
    session = link.session
    name = normalise_room(room) if room else session.current
    if not name or name not in session.rooms:
        where = f"#{name}" if name else "a room"
        raise Refused("not_in_room", f"you are not in {where}; /join a room first")
    return name


def _text(chat: Chat, raw: str) -> str:
    text = clean(raw)
    if not text:
        raise Refused("bad_request", "the message is empty")
    if len(text) > chat.config.max_text:
        raise Refused("too_long", f"messages are at most {chat.config.max_text} characters")
    return text


def draft(session: Session, room: str, kind: str, text: str) -> ev.Message:
    """A message from `session`, before the broker gives it its id and time."""
    return ev.Message(
        id=0,
        room=room,
        uid=session.uid,
        name=session.name,
        role=session.role,
        kind=kind,
        text=text,
        ts=0.0,
    )


def text_cost(request: Any) -> float:
    """A message costs more the longer it is (`limits.message_cost`)."""
    return message_cost(request.text)


# What reading costs. Every request costs something: a quarter token up front, and what
# an answer returns is charged after it, by its size (`Chat.charge`): a full page of `who`
# or `rooms` one token more, a resume one token per lifecycle.REPLAY_PER_TOKEN messages
# replayed (charged by the replay when it ends).
# Free on purpose: `ping` (the page's liveness), `quit` and `forget` (leaving must always
# work), `resources` (help is never behind a budget); their answers are small and fixed.
READ = 0.25


def page_of(items: list[T], page: int, size: int) -> tuple[list[T], bool]:
    """Page `page` (from 1) of `items`, and whether another follows."""
    if page < 1:
        raise Refused("bad_request", "pages are numbered from 1")
    start = (page - 1) * size
    return items[start : start + size], len(items) > start + size


class Everyday(Feature):
    """What everyone does: say, rooms, names, help, ignore, resume, quit.

    `help_lines`: the names of the help lines in the resources file; nobody may take a
    name that could pass for one (the caller reads the file: the core does no I/O)."""

    def __init__(self, help_lines: Iterable[str] = ()) -> None:
        self.help_lines = HelpLines(help_lines)

    def bind(self, chat: Chat) -> None:
        super().bind(chat)
        config = chat.config
        self.opened = WindowCounter(config.new_rooms_per_person, config.retention_seconds)

    async def on_tick(self) -> None:
        self.opened.prune(self.chat.clock())

    @handles(rq.Say, rq.Me, cost=text_cost)
    async def say(self, link: Link, request: rq.Say | rq.Me) -> None:
        chat = self.chat
        raw = request.text  # a slash command reached its own handler (Chat._parse)
        if isinstance(request, rq.Say) and raw.startswith("//"):
            raw = raw[1:]
        text = _text(chat, raw)
        room = room_of(link, request.room)
        session = link.session
        chat.check_say(session, room, text)
        kind = "me" if isinstance(request, rq.Me) else "say"
        chat.count("messages_in")
        stored = await chat.broker.publish(draft(session, room, kind, text), request.ref)
        await chat.said(session, stored)

    @handles(rq.Join)
    async def join(self, link: Link, request: rq.Join) -> None:
        chat = self.chat
        room = normalise_room(request.room)
        session = link.session
        if not valid_room(room):
            raise Refused("bad_request", "room names are 1-32 of a-z, 0-9 and -")
        if is_private(room) and room not in session.rooms:
            raise Refused("forbidden", "that room is private")
        most = chat.config.max_rooms_per_session
        if room not in session.rooms and len(session.rooms) >= most:
            raise Refused("bad_request", f"you can be in at most {most} rooms; /leave one first")
        chat.check_join(session, room)
        if room not in session.rooms:
            await self._may_open(session, room)
        with session.life.hold():  # `joined` first, then what the room says meanwhile
            if room in session.rooms:
                session.current = room
                count = None
            else:
                count = await chat.enter(session, room)
                if count == 1:  # nobody was there: they opened it
                    self.opened.hit(session.uid, chat.clock())
            chat.reply(link, await chat.joined(room, count), request)

    async def _may_open(self, session: Session, room: str) -> None:
        """Rooms cost memory (and, on the broker, their history for a retention window):
        a node holds at most `max_rooms_per_node` with people, and one person opens at most
        `new_rooms_per_person` within a window; joining a room with people is always fine."""
        chat = self.chat
        most = chat.config.max_rooms_per_node
        if room not in chat.local and chat.rooms_in_use() >= most:
            text = f"this server has {most} rooms open; join one of them (/rooms)"
            raise Refused("too_many_rooms", text)
        if self.opened.full(session.uid, chat.clock()) and not await chat.broker.members(room):
            text = "you have opened many new rooms lately; join one with people in it, or wait"
            raise Refused("too_many_rooms", text)

    @handles(rq.Leave)
    async def leave(self, link: Link, request: rq.Leave) -> None:
        chat = self.chat
        room = room_of(link, request.room)
        await chat.exit(link.session, room)
        chat.reply(link, ev.Left(room=room), request)
        await chat.left(link.session, room)

    @handles(rq.Nick)
    async def nick(self, link: Link, request: rq.Nick) -> None:
        chat = self.chat
        session = link.session
        name, problem = check_name(request.name, chat.config.max_name, self.help_lines)
        if problem:
            raise Refused("invalid_name", problem)
        key, old_key = name_key(name), session.name_key
        if key != old_key:
            if not await names.claim(chat.broker, key, session.uid, held=claim_keys(old_key)):
                text = f"{name} is taken, or too like the name of someone here; try another"
                raise Refused("name_taken", text)
            await names.release(chat.broker, old_key, session.uid, keep=claim_keys(key))
        old, session.name, session.name_key = session.name, name, key
        chat.reply(link, ev.Notice(kind="nick", text=f"you are now {name}", name=name), request)
        for room in session.rooms:
            count = await chat.broker.join_room(room, session.member())
            await chat.announce(session, room, "nick", count, old=old)

    @handles(rq.Who, cost=READ)
    async def who(self, link: Link, request: rq.Who) -> None:
        """Who is in a room, `page_size` at a time; a full page costs a token more."""
        chat = self.chat
        room = normalise_room(request.room) if request.room else link.session.current
        if not room or not valid_room(room):
            raise Refused("bad_request", "which room? /who ROOM")
        if is_private(room) and room not in link.session.rooms:
            raise Refused("forbidden", "that room is private")
        everyone, size = await chat.broker.members(room), chat.config.page_size
        members, more = page_of(everyone, request.page, size)
        count, page = len(everyone), request.page
        chat.reply(
            link, ev.Who(room=room, members=members, count=count, page=page, more=more), request
        )
        chat.charge(link, len(members) / size)

    @handles(rq.Rooms, cost=READ)
    async def rooms(self, link: Link, request: rq.Rooms) -> None:
        """The public rooms, `page_size` at a time; a full page costs a token more."""
        chat = self.chat
        listed = [r for r in await chat.broker.room_counts() if not is_private(r.name)]
        rooms, more = page_of(listed, request.page, chat.config.page_size)
        answer = ev.Rooms(rooms=rooms, count=len(listed), page=request.page, more=more)
        chat.reply(link, answer, request)
        chat.charge(link, len(rooms) / chat.config.page_size)

    @handles(rq.Ping, cost=0)
    async def ping(self, link: Link, request: rq.Ping) -> None:
        self.chat.reply(link, ev.Pong(), request)

    @handles(rq.Help, cost=READ)
    async def help(self, link: Link, request: rq.Help) -> None:
        role = link.session.role
        text = help_text(lambda kind: self.chat.may(role, kind), request.topic)
        self.chat.reply(link, ev.Notice(kind="help", text=text), request)

    @handles(rq.Quit, cost=0)
    async def quit(self, link: Link, request: rq.Quit) -> None:
        self.chat.reply(link, ev.Bye(reason="quit"), request)
        link.sink.close("quit")
        await self.chat.close(link, "quit", resumable=False)

    @handles(rq.Forget, cost=0)
    async def forget(self, link: Link, request: rq.Forget) -> None:
        """Quick exit, server side: no resume, nothing kept or still queued for this person."""
        self.chat.reply(link, ev.Bye(reason="forgotten"), request)
        link.sink.close("forgotten")
        await self.chat.close(link, "forgotten", resumable=False)

    @handles(rq.Ignore, rq.Unignore)
    async def ignore(self, link: Link, request: rq.Ignore | rq.Unignore) -> None:
        asked = "who? give a uid or a name"
        target = await find_anywhere(self.chat, request.uid, request.name, asked)
        session = link.session
        if target.uid == session.uid:
            raise Refused("bad_request", "you cannot ignore yourself")
        if isinstance(request, rq.Ignore):
            session.ignored = session.ignored | {target.uid}
            text = f"you will no longer see messages from {target.name}"
        else:
            session.ignored = session.ignored - {target.uid}
            text = f"you will see messages from {target.name} again"
        kind: NoticeKind = "ignore" if isinstance(request, rq.Ignore) else "unignore"
        self.chat.reply(link, ev.Notice(kind=kind, text=text, name=target.name), request)

    @handles(rq.Resume, cost=READ)
    async def resume(self, link: Link, request: rq.Resume) -> None:
        """Come back as oneself: what was missed is replayed, then charged by its size."""
        chat = self.chat
        old = await chat.find_session(hash_token(request.session))
        if old is None:  # unknown or expired: no history for a stranger, and they know it
            chat.reply(link, ev.Resumed(missed=0, complete=False), request)
            chat.count("resumes_unknown")
            return
        # Replays at the pace the connection reads, and ends with `resumed` itself.
        await lifecycle.resume(chat, link, old, request.last, request.ref)
        chat.count("resumes")
        if old.link is link:
            await chat.resumed(old)
