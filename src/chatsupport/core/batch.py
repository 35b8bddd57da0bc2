"""One room's events of one loop turn, handed to its members together.

Under load several messages reach a busy room in one turn. Delivering each to each member
costs a pass over the members per message; a `Batch` instead collects the turn's events
once, and `Chat.seal` makes one pass at the end of the turn (or sooner, when anything else
is about to be sent: nothing overtakes). A member to whom every event goes unchanged (the
usual case: not its sender, nobody it ignores, not held behind a reply) is handed the batch
whole, and its transport writes one rendering of it, made once per variant and shared by
every such member (`cache`); anyone else gets the events one by one, as without batching.
"""

from __future__ import annotations

from . import events as ev
from .session import Session


class Batch:
    __slots__ = ("cache", "events", "members", "plain", "room", "senders")

    def __init__(self, room: str, members: dict[str, Session]) -> None:
        self.room = room
        self.members = members  # the room's live member map (membership changes seal first)
        # (event, its sender's uid, the sender's ref, hidden from everyone but the sender)
        self.events: list[tuple[ev.Event, str | None, str | None, bool]] = []
        self.senders: set[str | None] = set()
        self.plain = True  # nothing hidden: the same events go to every member but senders
        # Renderings shared by the members a transport hands the batch to, keyed by the
        # transport's variant (a room tag, compressed or not); each transport its own key type.
        self.cache: dict[object, bytes] = {}

    def add(self, event: ev.Event, sender: str | None, ref: str | None, hidden: bool) -> None:
        self.events.append((event, sender, ref, hidden))
        self.senders.add(sender)
        if hidden:
            self.plain = False
