"""The Redis broker's pure parts, without Redis: per-room delivery order (ordering.py),
the channel's records (wire.py) and the outage guard's two modes (connection.py).
Cross-node behaviour with a real redis-server is in tests/broker/test_cluster.py."""

from __future__ import annotations

import msgspec
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from chatsupport.broker.redis import wire
from chatsupport.broker.redis.connection import Link, degrades, parse_url, raises_unavailable
from chatsupport.broker.redis.ordering import Feed, Seen, Step
from chatsupport.core.events import Member, Message, Notice
from chatsupport.core.ports import BrokerUnavailable


def message(id_: int, room: str = "lobby") -> Message:
    return Message(
        id=id_,
        room=room,
        uid="u1",
        name="Quiet Otter",
        role=None,
        kind="say",
        text=f"m{id_}",
        ts=0.0,
    )


def published(id_: int, room: str = "lobby", ref: str | None = None) -> wire.Published:
    body = msgspec.Raw(wire.encode(message(0, room)))
    return wire.Published(id_, 1000 * id_, room, ref, body)


def started(last: int) -> Feed:
    feed = Feed()
    assert feed.start(last) == []
    return feed


# ---- ordering ------------------------------------------------------------------------------
def test_next_ids_are_delivered_and_duplicates_dropped() -> None:
    feed = started(4)
    assert [feed.arrive(published(n)) for n in (5, 6, 6, 5, 7)] == [
        Step.DELIVER,
        Step.DELIVER,
        Step.DROP,
        Step.DROP,
        Step.DELIVER,
    ]
    assert feed.last == 7


def test_a_gap_is_filled_from_the_stream_before_the_message_that_showed_it() -> None:
    feed = started(2)
    late = published(6)
    assert feed.arrive(late) is Step.FILL
    assert feed.last == 2  # nothing delivered until the gap is read
    # The stream answers everything after 2, including 6 itself (it is stored first).
    fresh = feed.fill([message(n) for n in (3, 4, 5, 6)])
    assert [m.id for m in fresh] == [3, 4, 5, 6]
    assert feed.after_fill(late) is False  # the fill delivered it already
    assert feed.arrive(published(6)) is Step.DROP
    assert feed.arrive(published(7)) is Step.DELIVER


def test_a_gap_the_stream_no_longer_has_is_skipped() -> None:
    feed = started(2)
    late = published(9)
    assert feed.arrive(late) is Step.FILL
    assert feed.fill([message(n) for n in (7, 8)]) == [message(7), message(8)]  # 3-6 trimmed
    assert feed.after_fill(late) is True
    assert feed.last == 9


def test_a_fill_skips_what_was_delivered_meanwhile() -> None:
    feed = started(5)
    assert [m.id for m in feed.fill([message(n) for n in (4, 5, 6)])] == [6]
    assert feed.fill([]) == []
    assert feed.last == 6


def test_what_arrives_before_the_start_is_held_then_offered_in_order() -> None:
    feed = Feed()
    held = [published(n) for n in (3, 4, 5)]
    assert [feed.arrive(item) for item in held] == [Step.HOLD] * 3
    again = feed.start(3)  # joined when the room's last id was 3
    assert again == held
    # 3 was published before the join: not shown; 4 and 5 were after it.
    assert [feed.arrive(item) for item in again] == [Step.DROP, Step.DELIVER, Step.DELIVER]
    assert feed.start(0) == []  # started once: a second start changes nothing
    assert feed.last == 5


def test_seen_keeps_the_highest_id_and_forgets_quiet_rooms_nobody_is_in() -> None:
    seen = Seen()
    seen.note("lobby", 7, now=10.0)
    seen.note("lobby", 3, now=11.0)  # an older id arriving late does not lower it
    seen.note("quiet", 2, now=1.0)
    seen.note("kept", 4, now=1.0)
    assert (seen.last("lobby"), seen.last("nowhere")) == (7, None)
    seen.forget_quiet(before=5.0, keep={"kept"})
    assert sorted(seen.rooms()) == [("kept", 4), ("lobby", 7)]


# ---- wire ----------------------------------------------------------------------------------
def test_a_message_as_the_publish_script_builds_it() -> None:
    body = wire.encode(message(0, "dm-ab"))
    # What scripts.PUBLISH concatenates: kind, id, Redis ms, room, ref, body.
    data = b'["M",12,1700000000123,' + wire.encode("dm-ab") + b',"r1",' + body + b"]"
    item = wire.delivery(data)
    assert isinstance(item, wire.Published)
    assert (item.id, item.room, item.ref) == (12, "dm-ab", "r1")
    shown = item.message()
    assert (shown.id, shown.ts, shown.text) == (12, 1700000000.123, "m0")


def test_signals_directs_and_releases_round_trip() -> None:
    notice = Notice(kind="announce", text="just for you")
    assert wire.delivery(wire.signal("lobby", notice, None)) == wire.Signal("lobby", None, notice)
    assert wire.delivery(wire.direct("u1", notice)) == wire.Direct("u1", notice)
    # What TAKE_SESSION publishes (cjson.encode({'R', uid, node})).
    assert wire.delivery(b'["R","u1","n2"]') == wire.Release("u1", "n2")


@pytest.mark.parametrize(
    "data", [b"", b"M 1 2 lobby\nnull\n{}", b'["X",1]', b'["M",1]', b'["D","u1",{"type":"?"}]']
)
def test_anything_else_on_the_channel_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        wire.delivery(data)


def test_stream_entries_and_flat_answers() -> None:
    body = wire.encode(message(0))
    entry = wire.stream_entry("lobby", [b"i", b"4", b"t", b"4000", b"b", body])
    assert entry.message() == msgspec.structs.replace(message(0), id=4, ts=4.0)
    member = Member(uid="u1", name="Quiet Otter")
    assert wire.gone([b"lobby", 2, wire.encode(member)]) == [wire.Gone("lobby", 2, member)]
    assert wire.pairs([b"a", 1, "b", b"x"]) == [("a", 1), ("b", b"x")]
    assert (wire.ms(0.0), wire.ms(1.5)) == (1, 1500)


# ---- the outage guard ----------------------------------------------------------------------
class Part:
    """A broker part as the decorators expect one: it has a `link`."""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.failure: Exception | None = None

    def _here(self, room: str) -> str:
        return f"local {room}"

    @degrades(_here)
    async def degrading(self, room: str) -> str:
        if self.failure is not None:
            raise self.failure
        return f"shared {room}"

    @raises_unavailable
    async def refusing(self, room: str) -> str:
        if self.failure is not None:
            raise self.failure
        return f"shared {room}"


async def test_the_guard_refuses_or_degrades_and_reports_each_change_once() -> None:
    link = Link(parse_url("redis://127.0.0.1:1/0"), "n1")  # never connected
    heard: list[bool] = []
    link.on_health = heard.append
    part = Part(link)
    try:
        with pytest.raises(BrokerUnavailable):  # not connected yet: refused, nothing said
            await part.refusing("lobby")
        assert await part.degrading("lobby") == "local lobby"
        link.up = True
        assert await part.refusing("lobby") == "shared lobby"
        part.failure = ResponseError("OOM command not allowed")  # this call fails, no outage
        with pytest.raises(BrokerUnavailable, match="OOM"):
            await part.refusing("lobby")
        assert (link.up, heard) == (True, [])
        part.failure = RedisConnectionError("gone")
        assert await part.degrading("lobby") == "local lobby"
        with pytest.raises(BrokerUnavailable):
            await part.refusing("lobby")
        assert (link.up, heard) == (False, [False])  # said once, not once per call
    finally:
        await link.close()
