"""The conversation basics beyond saying things: deleting a message, and typing.

- **Delete.** `delete {room, id}` (`/delete`: your newest message in the current room)
  takes a message out of every client and out of the history that resume replays, on
  every node: the broker keeps a `deleted` tombstone (who wrote it, never its text) in its
  place, and sends it to the room. Your own messages only; a moderator any message, and
  that is noted for the moderators (log and `!mods`), without the text.
- **Typing.** `typing {room}` in a one-to-one chat reaches the other person as `typing
  {room, uid, name}` (a client shows it for a few seconds). Never in a group room. It
  costs nothing from the message budget, but has a small bucket of its own.
"""

from __future__ import annotations

import logging

import msgspec

from . import events as ev
from . import requests as rq
from . import staff
from .chat import Chat, Refused
from .feature import Feature, handles
from .handlers import room_of
from .limits import TokenBucket
from .rooms import is_private, normalise_room, valid_room
from .session import Link, Session

log = logging.getLogger("chatsupport.core")

TYPING_RATE = 0.5  # typing signals per second, sustained (a client sends one every 3 s)
TYPING_BURST = 3.0


class Conversation(Feature):
    def __init__(self) -> None:
        self.typing_budget: dict[str, TokenBucket] = {}  # uid -> their typing bucket

    # ---- delete -----------------------------------------------------------------------------
    @handles(rq.Delete)
    async def delete(self, link: Link, request: rq.Delete) -> None:
        chat, session = self.chat, link.session
        moderator = session.role == "mod"
        by_id = moderator and request.id is not None
        room = _any_room(link, request.room) if by_id else room_of(link, request.room)
        target = await _find(chat, session, room, request.id)
        if target.uid != session.uid and not moderator:
            raise Refused("forbidden", "you can only delete your own messages")
        tombstone = ev.Deleted(
            room=room,
            id=target.id,
            uid=target.uid,
            name=target.name,
            moderated=target.uid != session.uid,
        )
        if not await chat.broker.delete(room, tombstone, session.uid):
            raise Refused("bad_request", "that message is already gone")
        chat.count("messages_deleted")
        # The others get it from the room; a copy carries our `ref` (the tombstone is kept,
        # and its encoding is shared by every recipient).
        chat.send(link, msgspec.structs.replace(tombstone, ref=request.ref))
        if tombstone.moderated:
            await self._note_for_mods(session, tombstone)

    async def _note_for_mods(self, moderator: Session, tombstone: ev.Deleted) -> None:
        """Who removed whose message where, for the moderators; the words are gone."""
        log.info(
            "delete by=%s target=%s room=%s id=%d",
            moderator.uid,
            tombstone.uid,
            tombstone.room,
            tombstone.id,
        )
        text = f"{moderator.name} deleted a message by {tombstone.name} in #{tombstone.room}"
        await staff.tell_mods(self.chat, ev.Notice(kind="deleted", text=text, name=tombstone.name))

    # ---- typing -----------------------------------------------------------------------------
    @handles(rq.Typing, cost=0)
    async def typing(self, link: Link, request: rq.Typing) -> None:
        chat, session = self.chat, link.session
        room = room_of(link, request.room)
        if not is_private(room):
            raise Refused("bad_request", "typing is shown in one-to-one chats only")
        bucket = self.typing_budget.get(session.uid)
        if bucket is None:
            bucket = self.typing_budget[session.uid] = TokenBucket(TYPING_RATE, TYPING_BURST)
        if not bucket.take(chat.clock()):
            # Refused, but not as a Refused: typing too often is a client's fault, never
            # a flood strike that could mute the person (flood.py counts those).
            chat.fail(link, "rate_limited", "typing is sent at most every few seconds", request.ref)
            return
        typing = ev.Typing(room=room, uid=session.uid, name=session.name)
        await chat.broker.signal(room, typing, session.uid)  # the sender is left out

    async def on_end(self, session: Session) -> None:
        self.typing_budget.pop(session.uid, None)


def _any_room(link: Link, raw: str | None) -> str:
    """For a moderator deleting by id (from a report about a room they are not in)."""
    room = normalise_room(raw) if raw else ""
    return room if valid_room(room) else room_of(link, raw)


async def _find(chat: Chat, session: Session, room: str, message_id: int | None) -> ev.Message:
    """Message `message_id` of `room` if still retained, or without an id the newest one
    `session` wrote there (since they came in)."""
    if message_id is not None:
        messages, _ = await chat.broker.history(room, message_id - 1)
        found = next((m for m in messages if m.id == message_id), None)
        if found is None:
            raise Refused("bad_request", "that message is no longer kept (or was deleted)")
        return found
    messages, _ = await chat.broker.history(room, session.since.get(room, 0))
    found = next((m for m in reversed(messages) if m.uid == session.uid), None)
    if found is None:
        raise Refused("bad_request", f"you have no message in #{room} to delete")
    return found
