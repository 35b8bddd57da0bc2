"""Staff channels: how reports reach moderators and alerts reach moderators and listeners.

Each signed-in moderator or listener is a local member of one internal channel, `!mods`
or `!listeners`. The names cannot be typed as rooms (`!` is not allowed in room names)
and the broker is never told about these members, so the channels are never listed,
counted or joinable. A staff event is sent with `broker.signal` on the channel, so it
reaches staff on every node, exactly like presence in a room; each node delivers it to
its own members.
"""

from __future__ import annotations

from . import events as ev
from .chat import END_HOOKS, Chat, Refused
from .names import name_key
from .session import Link, Session

MODS = "!mods"
LISTENERS = "!listeners"
CHANNELS = {"mod": MODS, "listener": LISTENERS}


def enlist(chat: Chat, session: Session) -> None:
    """Put a newly signed-in person in their role's channel (and only that one)."""
    discharge(chat, session)
    channel = CHANNELS.get(session.role or "")
    if channel:
        chat.local.setdefault(channel, {})[session.uid] = session


def discharge(chat: Chat, session: Session) -> None:
    for channel in CHANNELS.values():
        members = chat.local.get(channel)
        if members is not None:
            members.pop(session.uid, None)
            if not members:
                del chat.local[channel]


async def _ended(chat: Chat, session: Session) -> None:
    discharge(chat, session)


END_HOOKS.append(_ended)


async def tell_mods(chat: Chat, event: ev.Event) -> None:
    await chat.broker.signal(MODS, event, None)


async def tell_staff(chat: Chat, event: ev.Event) -> None:
    """Moderators and listeners."""
    await chat.broker.signal(MODS, event, None)
    await chat.broker.signal(LISTENERS, event, None)


def require_mod(link: Link) -> None:
    """WebSocket frames reach handlers without the slash-command role check: check here."""
    if link.session.role != "mod":
        raise Refused("forbidden", "only moderators can do that")


def is_staff(session: Session) -> bool:
    return session.role in CHANNELS


def find_person(
    chat: Chat, uid: str | None, name: str | None, ask: str = "whom? give a uid or a name"
) -> Session:
    """Someone on this node, by uid (WebSocket) or by name, look-alikes included (text);
    `ask` is the error when neither is given."""
    if uid:
        found = chat.sessions.get(uid)
    elif name:
        key = name_key(name)
        found = next((s for s in chat.sessions.values() if s.name_key == key), None)
    else:
        raise Refused("bad_request", ask)
    if found is None:
        raise Refused("bad_request", f"nobody called {name or uid} is here")
    return found
