"""Staff channels: how reports reach moderators and alerts reach moderators and listeners.

Each signed-in moderator or listener subscribes (`Chat.subscribe`) to one internal
channel, `!mods` or `!listeners`, until their session ends. The names cannot be typed as
rooms (`!` is not allowed in room names) and the broker is never told about these
subscribers, so the channels are never listed, counted or joinable. A staff event is
sent with `broker.signal` on the channel, so it reaches staff on every node, exactly like
presence in a room; each node delivers it to its own subscribers.
"""

from __future__ import annotations

from . import events as ev
from .chat import Chat
from .session import Session

MODS = "!mods"
LISTENERS = "!listeners"
CHANNELS = {"mod": MODS, "listener": LISTENERS}


def enlist(chat: Chat, session: Session) -> None:
    """Put a newly signed-in person in their role's channel (and only that one); the
    Chat takes them out of it when their session ends."""
    for channel in CHANNELS.values():
        chat.unsubscribe(channel, session)
    if session.role in CHANNELS:
        chat.subscribe(CHANNELS[session.role], session)


async def tell_mods(chat: Chat, event: ev.Event) -> None:
    await chat.broker.signal(MODS, event, None)


def is_staff(session: Session) -> bool:
    return session.role in CHANNELS
