"""Moderation state shared by every node: the broker's flags, mirrored in a local cache.

Bans (by uid and by keyed address hash), mutes, shadow-mutes, slow mode and locks are
broker flags (`set_flag(kind, key, ttl, value)`), so a ban on one node holds on all of
them and each expires on its own. The checks on the hot path (admit, say, join, fan-out)
are synchronous and must stay cheap, so they read this node's cache (`ModState`), never
the broker; `Shared` writes through the broker:

- a change is written to the broker, applied here, then signalled on the internal
  channel `!moderation` (a `Control` event), which every node applies to its cache;
- every `RESYNC` seconds (and on the first tick) the cache is rebuilt from the broker,
  which catches up a node started later or signals lost while Redis was away.

A flag's value is JSON `{"until": wall-clock expiry, "data": ...}`; the cache keeps
expiries on the Chat's monotonic clock. With the memory broker all of this is in-process
and synchronous, as before. Actions on a person held by another node (kick, ban) travel
the same channel (`kind: "act"`); the node holding them carries them out (moderation.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from . import events as ev
from .chat import Chat
from .feature import Visibility
from .ports import BrokerUnavailable
from .vocabulary import Ending

CONTROL = "!moderation"  # node-to-node: `!` cannot be typed in a room name
KINDS = ("mute", "shadow", "ban", "banned", "blocked", "slow", "lock")
ROOM_TTL = 86400.0  # slow mode and locks end on their own after a day at most
RESYNC = 10.0  # seconds between rebuilds of the cache from the broker

_json = msgspec.json.Encoder()
decode = msgspec.json.Decoder(dict[str, Any])


@dataclass(slots=True)
class BanEntry:
    name: str
    name_key: str
    address_keys: set[str]  # networks banned with the person (only by a moderator's choice)
    until: float
    client_keys: set[str] = field(default_factory=set)  # the ids their clients held


@dataclass(slots=True)
class ModState(Visibility):
    """This node's view of moderation state; also the chat's visibility policy (a
    shadow-muted person's messages reach only themselves)."""

    mutes: dict[str, float] = field(default_factory=dict)  # uid -> until
    shadows: dict[str, float] = field(default_factory=dict)  # uid -> until
    bans: dict[str, BanEntry] = field(default_factory=dict)  # uid -> ban
    banned: dict[str, float] = field(default_factory=dict)  # address key -> until
    blocked: dict[str, float] = field(default_factory=dict)  # client key -> until
    slow: dict[str, float] = field(default_factory=dict)  # room -> seconds between messages
    spoke: dict[tuple[str, str], float] = field(default_factory=dict)  # (room, uid) -> when
    locked: dict[str, set[str]] = field(default_factory=dict)  # room -> who may still speak
    # Shadow-muted messages, (room, id): never replayed or reportable, kept as long as
    # history is (`hidden_order` says when each was hidden, for the expiry).
    hidden_ids: set[tuple[str, int]] = field(default_factory=set)
    hidden_order: deque[tuple[float, tuple[str, int]]] = field(default_factory=deque)
    synced: float | None = None  # when the cache was last rebuilt from the broker
    later: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # for the tick

    def muted_for(self, uid: str, now: float) -> float:
        return max(0.0, self.mutes.get(uid, 0.0) - now)

    def ban_left(self, address_key: str, now: float) -> float:
        return max(0.0, self.banned.get(address_key, 0.0) - now)

    def block_left(self, client_key: str, now: float) -> float:
        return max(0.0, self.blocked.get(client_key, 0.0) - now)

    def silenced(self, uid: str | None) -> bool:
        return uid in self.shadows

    def hidden(self, room: str, message_id: int) -> bool:
        return (room, message_id) in self.hidden_ids

    def hide(self, room: str, message_id: int, now: float) -> None:
        key = (room, message_id)
        if key not in self.hidden_ids:
            self.hidden_ids.add(key)
            self.hidden_order.append((now, key))

    def expire(self, now: float, horizon: float) -> None:
        """Drop what ended by `now`, and hidden ids older than `horizon` (history's)."""
        for table in (self.mutes, self.banned, self.blocked, self.shadows):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]
        for uid in [u for u, entry in self.bans.items() if entry.until <= now]:
            del self.bans[uid]
        for room, uid in [k for k, t in self.spoke.items() if now - t >= self.slow.get(k[0], 0)]:
            del self.spoke[(room, uid)]
        while self.hidden_order and self.hidden_order[0][0] < horizon:
            self.hidden_ids.discard(self.hidden_order.popleft()[1])

    def table(self, kind: str) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {
            "mute": self.mutes,
            "shadow": self.shadows,
            "banned": self.banned,
            "blocked": self.blocked,
            "ban": self.bans,
            "slow": self.slow,
            "lock": self.locked,
        }
        return tables.get(kind, {})

    def keep(self, kind: str, key: str, data: Any, until: float) -> None:
        if kind in ("mute", "shadow", "banned", "blocked"):
            self.table(kind)[key] = until
        elif kind == "ban" and isinstance(data, dict):
            keys = {str(k) for k in data.get("keys", ())}
            clients = {str(k) for k in data.get("clients", ())}
            name, name_key = str(data["name"]), str(data["name_key"])
            self.bans[key] = BanEntry(name, name_key, keys, until, clients)
        elif kind == "slow" and isinstance(data, int | float):
            self.slow[key] = float(data)
        elif kind == "lock" and isinstance(data, list):
            self.locked[key] = {str(uid) for uid in data}

    def drop(self, kind: str, key: str) -> None:
        self.table(kind).pop(key, None)


class Shared:
    """Moderation state written through the broker, then this node, then every node."""

    def __init__(self, chat: Chat, state: ModState) -> None:
        self.chat = chat
        self.state = state

    def encode(self, data: Any, seconds: float) -> str:
        return _json.encode({"until": self.chat.wallclock() + seconds, "data": data}).decode()

    async def share(self, kind: str, key: str, data: Any, seconds: float) -> None:
        """Set flag `kind`/`key` for `seconds` everywhere (BrokerUnavailable: nowhere)."""
        broker, value = self.chat.broker, self.encode(data, seconds)
        await broker.set_flag(kind, key, seconds, value)
        self.apply(kind, key, value)
        await broker.signal(CONTROL, ev.Control(kind=kind, key=key, value=value), None)

    async def unshare(self, kind: str, key: str) -> None:
        await self.chat.broker.clear_flag(kind, key)
        self.apply(kind, key, None)
        await self.chat.broker.signal(CONTROL, ev.Control(kind=kind, key=key), None)

    async def act(
        self, uid: str, reason: Ending, text: str, seconds: float = 0.0, address: float = 0.0
    ) -> None:
        """Ask the node holding `uid` to end them (`kicked`, `banned` for `seconds`, and
        their network for `address` seconds if a moderator chose that)."""
        if not self.chat.broker.healthy:  # a signal would reach only this node: say so
            raise BrokerUnavailable("shared state is unreachable")
        order = {"reason": reason, "text": text, "seconds": seconds, "address": address}
        value = _json.encode(order).decode()
        await self.chat.broker.signal(CONTROL, ev.Control(kind="act", key=uid, value=value), None)

    async def hide_everywhere(self, room: str, message_id: int) -> None:
        """A shadow-muted person's message: no node replays it or lets it be reported."""
        self.state.hide(room, message_id, self.chat.clock())
        control = ev.Control(kind="hide", key=room, value=str(message_id))
        await self.chat.broker.signal(CONTROL, control, None)

    def apply(self, kind: str, key: str, value: str | None) -> None:
        """One flag's new value (None: gone) into this node's cache."""
        clock = self.chat.clock
        if value is not None:
            try:
                parsed = decode.decode(value)
                until = clock() + float(parsed["until"]) - self.chat.wallclock()
                data = parsed.get("data")
            except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                return  # not ours (or from a newer node): ignore it rather than guess
            if until > clock():
                self.state.keep(kind, key, data, until)
                return
        self.state.drop(kind, key)

    async def resync(self) -> None:
        """Rebuild the cache from the broker (a node started later, or signals missed)."""
        fresh = {kind: await self.chat.broker.flags(kind) for kind in KINDS}
        for kind, flags in fresh.items():
            for key in set(self.state.table(kind)) - flags.keys():
                self.state.drop(kind, key)
            for key, value in flags.items():
                self.apply(kind, key, value)
        self.state.synced = self.chat.clock()
