"""What the Redis broker stores and publishes, as typed records: one place encodes and
decodes them (scripts.py builds the two deliveries a script publishes the same way).

The channel `P events` carries one JSON array per delivery, its first item the kind:
    ["M", id, ms, room, ref, message]   a room message (built by the PUBLISH script)
    ["S", room, sender, event]          a transient room event (presence); sender may be null
    ["E", id, node, room, sender, event]  the same for every node but <node>, which heard
                                        it while Redis was away (a late crisis alert); also
                                        kept in `P late` (10 minutes, 200 at most) for nodes
                                        that were reconnecting meanwhile
    ["D", uid, event]                   an event for one person
    ["R", uid, node]                    <node> adopted <uid> (TAKE_SESSION): others let go
A room's stream entries have the fields i (id), t (ms, Redis' clock) and b (message JSON);
a deleted message leaves the stream and its `deleted` event takes its place in `P del:ROOM`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, cast

import msgspec

from ...core.events import Deleted, Event, EventUnion, Member, Message
from ...core.ports import SessionRecord


class Published(msgspec.Struct, tag="M", array_like=True, frozen=True):
    """A room message as the PUBLISH script sent it (or as read back from the stream)."""

    id: int
    ms: int  # Redis' clock
    room: str
    ref: str | None
    body: msgspec.Raw  # the Message as the sender's node encoded it; decoded only if shown

    def message(self) -> Message:
        stored = _message.decode(self.body)
        return msgspec.structs.replace(stored, id=self.id, ts=self.ms / 1000)


class Signal(msgspec.Struct, tag="S", array_like=True, frozen=True):
    room: str
    sender: str | None
    event: EventUnion


class SignalElsewhere(msgspec.Struct, tag="E", array_like=True, frozen=True):
    """A signal for every node but `skip`, whose people heard it while Redis was away; kept
    a while in `P late` too, for nodes that were reconnecting when it went out (`id` lets a
    node that gets it both ways deliver it once)."""

    id: str
    skip: str
    room: str
    sender: str | None
    event: EventUnion


class Direct(msgspec.Struct, tag="D", array_like=True, frozen=True):
    uid: str
    event: EventUnion


class Release(msgspec.Struct, tag="R", array_like=True, frozen=True):
    uid: str
    node: str


Delivery = Published | Signal | SignalElsewhere | Direct | Release


class Gone(msgspec.Struct, frozen=True):
    """A person of a node that died (REAP): their room, its count now, who they were."""

    room: str
    count: int
    member: Member


_delivery = msgspec.json.Decoder(Delivery)
_message = msgspec.json.Decoder(Message)
_member = msgspec.json.Decoder(Member)
_tombstone = msgspec.json.Decoder(Deleted)
_record = msgspec.json.Decoder(SessionRecord)
encode = msgspec.json.encode

DecodeError = msgspec.DecodeError


def delivery(data: bytes | str) -> Delivery:
    """One message of the channel; raises DecodeError if it is none of the five."""
    return _delivery.decode(data)


def signal(room: str, event: Event, sender: str | None) -> bytes:
    return encode(Signal(room, sender, cast(EventUnion, event)))


def signal_elsewhere(skip: str, room: str, event: Event, sender: str | None) -> bytes:
    late = SignalElsewhere(secrets.token_hex(8), skip, room, sender, cast(EventUnion, event))
    return encode(late)


def direct(uid: str, event: Event) -> bytes:
    return encode(Direct(uid, cast(EventUnion, event)))


def stream_entry(room: str, fields: Sequence[bytes]) -> Published:
    """A stream entry's flat [field, value, ...] (i, t, b) as the message it holds."""
    values = dict(zip(fields[::2], fields[1::2], strict=True))
    return Published(int(values[b"i"]), int(values[b"t"]), room, None, msgspec.Raw(values[b"b"]))


def member(raw: bytes) -> Member:
    return _member.decode(raw)


def tombstone(raw: bytes | str) -> Deleted:
    """A deleted message's place in `P del:ROOM` (its `deleted` event, never its text)."""
    return _tombstone.decode(raw)


def record(raw: bytes) -> SessionRecord:
    return _record.decode(raw)


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def pairs(flat: Sequence[Any]) -> list[tuple[str, Any]]:
    """A script's flat [key, value, key, value, ...] answer, keys as text."""
    return [(text(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]


def gone(flat: Sequence[Any]) -> list[Gone]:
    """REAP's flat [room, count, member JSON, ...]."""
    return [
        Gone(text(flat[i]), int(flat[i + 1]), member(flat[i + 2])) for i in range(0, len(flat), 3)
    ]


def ms(seconds: float) -> int:
    """Seconds as the whole milliseconds Redis takes (at least 1: 0 would mean no expiry)."""
    return max(1, int(seconds * 1000))
