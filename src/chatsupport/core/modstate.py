"""Moderation state shared by every node: the broker's flags, mirrored in a local cache.

Bans (by uid and by keyed address hash), mutes, shadow-mutes, slow mode and locks are
broker flags (`set_flag(kind, key, ttl, value)`), so a ban on one node holds on all of
them and each expires on its own. The checks on the hot path (admit, say, join, fan-out)
are synchronous and must stay cheap, so they read this node's cache, never the broker:

- a change is written to the broker, applied here, then signalled on the internal
  channel `!moderation` (a `Control` event), which every node applies to its cache;
- every `RESYNC` seconds (and on the first tick) the cache is rebuilt from the broker,
  which catches up a node started later or signals lost while Redis was away.

A flag's value is JSON `{"until": wall-clock expiry, "data": ...}`; the cache keeps
expiries on the Chat's monotonic clock. With the memory broker all of this is in-process
and synchronous, as before. Actions on a person held by another node (kick, ban) travel
the same channel (`kind: "act"`); the node holding them carries them out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..config import Config
from . import events as ev
from .chat import CHANNEL_HOOKS, Chat
from .limits import WindowCounter
from .ports import BrokerUnavailable
from .session import Session

CONTROL = "!moderation"  # node-to-node: `!` cannot be typed in a room name
KINDS = ("mute", "shadow", "ban", "banned", "slow", "lock")
ROOM_TTL = 86400.0  # slow mode and locks end on their own after a day at most
RESYNC = 10.0  # seconds between rebuilds of the cache from the broker

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(dict[str, Any])


@dataclass(slots=True)
class BanEntry:
    name: str
    name_key: str
    address_keys: set[str]
    until: float


@dataclass(slots=True)
class Moderation:
    """This node's view of moderation state (kept in `chat.extensions["moderation"]`)."""

    config: Config
    mutes: dict[str, float] = field(default_factory=dict)  # uid -> until
    shadows: dict[str, float] = field(default_factory=dict)  # uid -> until
    bans: dict[str, BanEntry] = field(default_factory=dict)  # uid -> ban
    banned: dict[str, float] = field(default_factory=dict)  # address key -> until
    slow: dict[str, float] = field(default_factory=dict)  # room -> seconds between messages
    spoke: dict[tuple[str, str], float] = field(default_factory=dict)  # (room, uid) -> when
    locked: dict[str, set[str]] = field(default_factory=dict)  # room -> who may still speak
    hidden: deque[tuple[float, tuple[str, int]]] = field(default_factory=deque)
    told_probation: set[str] = field(default_factory=set)
    synced: float | None = None  # when the cache was last rebuilt from the broker
    later: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # for the tick
    strikes: WindowCounter = field(init=False)

    def __post_init__(self) -> None:
        self.strikes = WindowCounter(self.config.flood_strikes, self.config.flood_window)

    def on_probation(self, session: Session, now: float) -> bool:
        """New arrivals, for their first `probation_seconds`; staff never are."""
        return session.role is None and now - session.created < self.config.probation_seconds

    def muted_for(self, uid: str, now: float) -> float:
        return max(0.0, self.mutes.get(uid, 0.0) - now)

    def ban_left(self, address_key: str, now: float) -> float:
        return max(0.0, self.banned.get(address_key, 0.0) - now)


def moderation_of(chat: Chat) -> Moderation:
    return chat.extension("moderation", Moderation, lambda: Moderation(chat.config))


# ---- writing: broker first, then this node, then every other node --------------------------
def encode(chat: Chat, data: Any, seconds: float) -> str:
    return _json.encode({"until": chat.wallclock() + seconds, "data": data}).decode()


async def share(chat: Chat, kind: str, key: str, data: Any, seconds: float) -> None:
    """Set flag `kind`/`key` for `seconds` everywhere (BrokerUnavailable: nowhere)."""
    value = encode(chat, data, seconds)
    await chat.broker.set_flag(kind, key, seconds, value)
    apply(chat, kind, key, value)
    await chat.broker.signal(CONTROL, ev.Control(kind=kind, key=key, value=value), None)


async def unshare(chat: Chat, kind: str, key: str) -> None:
    await chat.broker.clear_flag(kind, key)
    apply(chat, kind, key, None)
    await chat.broker.signal(CONTROL, ev.Control(kind=kind, key=key), None)


async def act(chat: Chat, uid: str, reason: str, text: str, seconds: float = 0.0) -> None:
    """Ask the node holding `uid` to end them (`kicked`, `banned` for `seconds`)."""
    if not chat.broker.healthy:  # a signal would reach only this node: say so instead
        raise BrokerUnavailable("shared state is unreachable")
    value = _json.encode({"reason": reason, "text": text, "seconds": seconds}).decode()
    await chat.broker.signal(CONTROL, ev.Control(kind="act", key=uid, value=value), None)


def hide(chat: Chat, room: str, message_id: int) -> None:
    """A shadow-muted person's message: never replayed or reportable (kept as long as
    history is)."""
    key = (room, message_id)
    if key not in chat.hidden:
        chat.hidden.add(key)
        moderation_of(chat).hidden.append((chat.clock(), key))


async def hide_everywhere(chat: Chat, room: str, message_id: int) -> None:
    control = ev.Control(kind="hide", key=room, value=str(message_id))
    await chat.broker.signal(CONTROL, control, None)


# ---- reading: the cache --------------------------------------------------------------------
def apply(chat: Chat, kind: str, key: str, value: str | None) -> None:
    """One flag's new value (None: gone) into this node's cache."""
    state = moderation_of(chat)
    if value is not None:
        try:
            parsed = _decode.decode(value)
            until = chat.clock() + float(parsed["until"]) - chat.wallclock()
            data = parsed.get("data")
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            return  # not ours (or from a newer node): ignore it rather than guess
        if until > chat.clock():
            _keep(chat, state, kind, key, data, until)
            return
    _drop(chat, state, kind, key)


def _keep(chat: Chat, state: Moderation, kind: str, key: str, data: Any, until: float) -> None:
    if kind == "mute":
        state.mutes[key] = until
    elif kind == "shadow":
        state.shadows[key] = until
        chat.shadowed.add(key)
    elif kind == "banned":
        state.banned[key] = until
    elif kind == "ban" and isinstance(data, dict):
        keys = {str(k) for k in data.get("keys", ())}
        state.bans[key] = BanEntry(str(data["name"]), str(data["name_key"]), keys, until)
    elif kind == "slow" and isinstance(data, int | float):
        state.slow[key] = float(data)
    elif kind == "lock" and isinstance(data, list):
        state.locked[key] = {str(uid) for uid in data}


def _table(state: Moderation, kind: str) -> dict[str, Any]:
    tables: dict[str, dict[str, Any]] = {
        "mute": state.mutes,
        "shadow": state.shadows,
        "banned": state.banned,
        "ban": state.bans,
        "slow": state.slow,
        "lock": state.locked,
    }
    return tables.get(kind, {})


def _drop(chat: Chat, state: Moderation, kind: str, key: str) -> None:
    _table(state, kind).pop(key, None)
    if kind == "shadow":
        chat.shadowed.discard(key)


async def resync(chat: Chat) -> None:
    """Rebuild the cache from the broker (a node started later, or signals missed)."""
    state = moderation_of(chat)
    fresh = {kind: await chat.broker.flags(kind) for kind in KINDS}
    for kind, flags in fresh.items():
        for key in set(_table(state, kind)) - flags.keys():
            _drop(chat, state, kind, key)
        for key, value in flags.items():
            apply(chat, kind, key, value)
    state.synced = chat.clock()


# ---- the channel ---------------------------------------------------------------------------
ActHandler = Callable[[Chat, Session, dict[str, Any]], None]
ACT: list[ActHandler] = []  # moderation.py carries out `act` on a person held here


def _on_control(chat: Chat, event: ev.Event) -> None:
    if not isinstance(event, ev.Control):
        return
    if event.kind == "hide":
        if event.value is not None and event.value.isdigit():
            hide(chat, event.key, int(event.value))
        return
    if event.kind != "act":
        apply(chat, event.kind, event.key, event.value)
        return
    session = chat.sessions.get(event.key)
    if session is None or event.value is None:
        return  # held by another node (or nobody): theirs to act on
    try:
        order = _decode.decode(event.value)
    except msgspec.DecodeError:
        return
    for handler in ACT:
        handler(chat, session, order)


CHANNEL_HOOKS[CONTROL] = _on_control
