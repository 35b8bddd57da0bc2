"""Finding a person by uid (the web page, from a message) or by name (typed, look-alikes
included): on this node first, then in the member lists of every room on every node."""

from __future__ import annotations

from dataclasses import dataclass

from .chat import Chat, Refused
from .names import name_key
from .session import Session
from .vocabulary import Role


@dataclass(frozen=True, slots=True)
class Person:
    """Someone found: held by this node (`session`) or by another one."""

    uid: str
    name: str
    role: Role | None
    session: Session | None


def find_here(
    chat: Chat, uid: str | None, name: str | None, ask: str = "whom? give a uid or a name"
) -> Session:
    """Someone on this node; `ask` is the error when neither a uid nor a name is given."""
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


async def find_anywhere(
    chat: Chat, uid: str | None, name: str | None, ask: str = "whom? give a uid or a name"
) -> Person:
    """Someone on this node, else on any node (while the broker is away: this node only)."""
    try:
        found = find_here(chat, uid, name, ask)
        return Person(found.uid, found.name, found.role, found)
    except Refused:
        if not (uid or name):
            raise
        key = name_key(name) if name else None
        for info in await chat.broker.room_counts():
            for member in await chat.broker.members(info.name):
                if member.uid == uid or (key and name_key(member.name) == key):
                    return Person(member.uid, member.name, member.role, None)
        raise
