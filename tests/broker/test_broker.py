"""What every broker does, one test body per behaviour run against each backend: the
in-memory default and Redis (a real redis-server). Cross-node behaviour is in test_cluster.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable

import pytest

from chatsupport.broker import make_broker
from chatsupport.core.events import Deleted, Event, Member, Message, Notice, Presence
from chatsupport.core.ports import Broker, SessionRecord
from chatsupport.keys import derive

from ..redis_server import RedisServer, delete_prefix, redis_server_fixture

redis_server = pytest.fixture(scope="session")(redis_server_fixture)


class Heard:
    """What the broker delivered to this node."""

    def __init__(self) -> None:
        self.room: list[tuple[str, Event, str | None, str | None]] = []
        self.direct: list[tuple[str, Event]] = []

    def on_room(self, room: str, event: Event, sender: str | None, ref: str | None) -> None:
        self.room.append((room, event, sender, ref))

    def on_direct(self, uid: str, event: Event) -> Awaitable[None] | None:
        if isinstance(event, Notice) and event.kind == "handoff":
            return self._act_first(uid, event)  # as matching does: enter a room, then tell
        self.direct.append((uid, event))
        return None

    async def _act_first(self, uid: str, event: Event) -> None:
        for _ in range(3):
            await asyncio.sleep(0)  # a broker that did not await this would deliver "after" first
        self.direct.append((uid, event))


SECRET = b"the operator's secret for these tests"
BACKENDS = [pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BACKENDS)
async def started(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Broker, Heard]]:
    url = "memory"
    server: RedisServer | None = None
    prefix = f"b{uuid.uuid4().hex[:10]}:"
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        url = server.url(prefix)
    broker = make_broker(
        url, retention_seconds=600.0, retention_messages=5, wallclock=time.time, secret=SECRET
    )
    heard = Heard()
    await broker.start(heard.on_room, heard.on_direct)
    yield broker, heard
    await broker.stop()
    if server is not None:
        delete_prefix(server, prefix)


def message(text: str, room: str = "lobby") -> Message:
    return Message(
        id=0, room=room, uid="u1", name="Quiet Otter", role=None, kind="say", text=text, ts=0.0
    )


async def published(broker: Broker, heard: Heard, count: int) -> None:
    """Wait until this node has heard `count` room events (Redis delivers asynchronously)."""
    for _ in range(200):
        if len(heard.room) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"heard {len(heard.room)} of {count}")


async def test_ids_order_history_and_bounded_retention(started: tuple[Broker, Heard]) -> None:
    broker, heard = started
    await broker.join_room("lobby", Member("u1", "Quiet Otter"))
    stored = [await broker.publish(message(f"m{n}"), ref=f"r{n}") for n in range(8)]
    assert [m.id for m in stored] == list(range(1, 9))
    await published(broker, heard, 8)
    assert [(e.id, r) for _, e, _, r in heard.room if isinstance(e, Message)] == [
        (n, f"r{n - 1}") for n in range(1, 9)
    ]
    assert await broker.last_id("lobby") == 8
    kept, complete = await broker.history("lobby", 5)
    assert ([m.text for m in kept], complete) == (["m5", "m6", "m7"], True)
    kept, complete = await broker.history("lobby", 0)  # only the last 5 are retained
    assert ([m.id for m in kept], complete) == ([4, 5, 6, 7, 8], False)
    assert await broker.history("lobby", 8) == ([], True)
    assert await broker.history("elsewhere", 0) == ([], True)


async def test_history_reads_in_pages_oldest_first(started: tuple[Broker, Heard]) -> None:
    broker, _ = started
    for n in range(8):  # ids 1-8; the last 5 (4-8) are retained
        await broker.publish(message(f"m{n + 1}"), ref=None)
    gone = Deleted(room="lobby", id=6, uid="u1", name="Quiet Otter")
    assert await broker.delete("lobby", gone, "u1") is True
    kept, complete = await broker.history("lobby", 3, limit=2)
    assert ([m.id for m in kept], complete) == ([4, 5], True)  # whole: judged past the page
    kept, complete = await broker.history("lobby", 5, limit=2)
    assert ([m.id for m in kept], complete) == ([7, 8], True)  # a deleted place is skipped
    kept, complete = await broker.history("lobby", 0, limit=2)
    assert ([m.id for m in kept], complete) == ([4, 5], False)  # 1-3 are gone
    assert await broker.history("lobby", 8, limit=2) == ([], True)


async def test_a_deleted_message_leaves_history_and_its_tombstone_stays(
    started: tuple[Broker, Heard],
) -> None:
    broker, heard = started
    await broker.join_room("lobby", Member("u1", "Quiet Otter"))
    for n in range(8):  # ids 1-8; the last 5 (4-8) are retained
        await broker.publish(message(f"m{n + 1}"), ref=None)
    tombstone = Deleted(room="lobby", id=6, uid="u1", name="Quiet Otter")
    assert await broker.delete("lobby", tombstone, "u1") is True
    await published(broker, heard, 9)
    assert heard.room[-1] == ("lobby", tombstone, "u1", None)  # after the message itself
    assert await broker.delete("lobby", tombstone, "u1") is False  # deleted already
    gone = Deleted(room="lobby", id=2, uid="u1", name="Quiet Otter")
    assert await broker.delete("lobby", gone, "u1") is False  # no longer retained
    kept, complete = await broker.history("lobby", 5)
    assert ([m.text for m in kept], complete) == (["m7", "m8"], True)  # its place counts
    kept, complete = await broker.history("lobby", 0)
    assert ([m.id for m in kept], complete) == ([4, 5, 7, 8], False)
    assert await broker.deletions("lobby", 0) == [tombstone]
    assert await broker.deletions("lobby", 6) == []
    assert len(heard.room) == 9  # the refused deletes delivered nothing


async def test_membership_counts_and_signals(started: tuple[Broker, Heard]) -> None:
    broker, heard = started
    assert await broker.join_room("lobby", Member("u1", "Quiet Otter")) == 1
    assert await broker.join_room("lobby", Member("u2", "Calm Heron", "listener")) == 2
    assert await broker.join_room("lobby", Member("u2", "Calm Heron", "mod")) == 2  # update
    assert await broker.join_room("help", Member("u2", "Calm Heron")) == 1
    members = sorted(await broker.members("lobby"), key=lambda m: m.uid)
    assert members == [Member("u1", "Quiet Otter"), Member("u2", "Calm Heron", "mod")]
    assert await broker.join_room("lobby", Member("u1", "Quiet Otter", away=True)) == 2
    assert Member("u1", "Quiet Otter", away=True) in await broker.members("lobby")
    counts = await broker.room_counts()
    assert [(r.name, r.count) for r in counts] == [("help", 1), ("lobby", 2)]
    assert await broker.leave_room("help", "u2") == 0
    assert [r.name for r in await broker.room_counts()] == ["lobby"]
    presence = Presence(room="lobby", event="join", uid="u2", name="Calm Heron", count=2)
    await broker.signal("lobby", presence, "u2")
    await published(broker, heard, 1)
    assert heard.room == [("lobby", presence, "u2", None)]


async def test_names_are_claimed_once(started: tuple[Broker, Heard]) -> None:
    broker, _ = started
    assert await broker.claim_name("calm heron", "u1") is True
    assert await broker.claim_name("calm heron", "u1") is True  # one's own name again
    assert await broker.claim_name("calm heron", "u2") is False
    await broker.release_name("calm heron", "u2")  # not theirs: nothing happens
    assert await broker.claim_name("calm heron", "u2") is False
    await broker.release_name("calm heron", "u1")
    assert await broker.claim_name("calm heron", "u2") is True


async def test_session_records_are_taken_and_dropped(started: tuple[Broker, Heard]) -> None:
    broker, _ = started
    await broker.join_room("lobby", Member("u1", "Quiet Otter"))
    record = SessionRecord(
        token_hash="h1", uid="u1", name="Quiet Otter", rooms=("lobby", "help"), current="lobby"
    )
    await broker.save_session(record)
    assert await broker.take_session("nope") is None
    taken = await broker.take_session("h1")
    assert taken is not None and taken[0] == record
    await broker.drop_session("h1")
    assert await broker.take_session("h1") is None
    await broker.save_session(record)  # a late save (a disconnect racing the end) ...
    assert await broker.take_session("h1") is None  # ... does not bring it back


async def test_shared_secret_is_stable_and_derived_from_the_operators(
    started: tuple[Broker, Heard],
) -> None:
    broker, _ = started
    key = await broker.shared_secret("reporters")
    assert len(key) == 32 and await broker.shared_secret("reporters") == key
    assert await broker.shared_secret("other") != key
    assert key == derive(SECRET, "shared reporters")  # every node derives it: none stores it


async def test_flags_expire_and_list(started: tuple[Broker, Heard]) -> None:
    broker, _ = started
    await broker.set_flag("mute", "u1", 600, "flooding")
    await broker.set_flag("mute", "u2", 0.001)
    await broker.set_flag("ban", "u1", 600)
    await asyncio.sleep(0.01)  # past u2's ttl (a real clock: for Redis, its own)
    assert await broker.get_flag("mute", "u1") == "flooding"
    assert await broker.get_flag("mute", "u2") is None
    assert await broker.flags("mute") == {"u1": "flooding"}
    assert await broker.clear_flag("mute", "u1") is True
    assert await broker.flags("mute") == {}
    assert await broker.flags("ban") == {"u1": "1"}


async def test_queue_priority_then_arrival(started: tuple[Broker, Heard]) -> None:
    broker, _ = started
    assert [await broker.enqueue("q", item, 600) for item in ("a", "b", "c")] == [1, 2, 3]
    assert await broker.enqueue("q", "d", 600, priority=0) == 1
    assert await broker.enqueue("q", "e", 600, priority=0) == 2
    assert await broker.reprioritise("q", "c", 0) is True
    assert await broker.reprioritise("q", "zz", 0) is False
    assert await broker.queued("q") == ["d", "e", "c", "a", "b"]
    assert await broker.dequeue("q") == "d"
    assert await broker.dequeue("q", "a") == "a"
    assert await broker.dequeue("q", "a") is None
    assert await broker.queued("q") == ["e", "c", "b"]
    assert await broker.queued("empty") == []
    assert await broker.dequeue("empty") is None


async def test_a_burst_waits_its_turn_and_is_not_refused(started: tuple[Broker, Heard]) -> None:
    broker, heard = started
    await broker.join_room("lobby", Member("u1", "Quiet Otter"))
    stored = await asyncio.gather(*(broker.publish(message(f"b{n}"), None) for n in range(300)))
    assert sorted(m.id for m in stored) == list(range(1, 301))
    assert broker.healthy
    await published(broker, heard, 300)
    assert [e.id for _, e, _, _ in heard.room if isinstance(e, Message)] == list(range(1, 301))


async def test_direct_awaits_what_the_handler_returns(started: tuple[Broker, Heard]) -> None:
    broker, heard = started
    await broker.direct("u1", Notice(kind="handoff", text="first"))
    await broker.direct("u1", Notice(kind="announce", text="second"))
    for _ in range(500):  # Redis delivers through pub/sub: wait, bounded
        if len(heard.direct) == 2:
            break
        await asyncio.sleep(0.01)
    assert [e.kind for _, e in heard.direct if isinstance(e, Notice)] == ["handoff", "announce"]
