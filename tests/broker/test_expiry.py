"""History that expires on every broker: a room's messages go after the retention window,
the room itself once nobody is in it, and memory comes back after a room-spam run.

Absence is proven by walking everything reachable from the broker (or the whole server):
the text is there before the window ends (the walk finds it) and gone after.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
import types
import uuid

import pytest
import redis

from chatsupport.broker import make_broker
from chatsupport.broker.memory import ROOM_TTL_FACTOR, MemoryBroker
from chatsupport.core.events import Event, Member, Message

from ..helpers import TEST_ADDRESS_KEY, WsClient, eventually, start_server
from ..redis_server import RedisServer, delete_prefix, redis_server_fixture

redis_server = pytest.fixture(scope="session")(redis_server_fixture)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# Classes, modules, functions (their globals), the event loop and its tasks and frames.
NOT_HELD = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.FrameType,
    types.CoroutineType,
    asyncio.AbstractEventLoop,
    asyncio.Future,
)


def reachable_text(root: object, text: str, limit: int = 2_000_000) -> bool:
    """Whether `text` is held anywhere reachable from `root` (as a str or inside bytes)."""
    needle = text.encode()
    seen: set[int] = set()
    todo: list[object] = [root]
    while todo and len(seen) < limit:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, str):
            if text in item:
                return True
            continue
        if isinstance(item, bytes | bytearray | memoryview):
            if needle in bytes(item):
                return True
            continue
        if isinstance(item, NOT_HELD):
            continue  # these lead to every module, task and frame: not what `root` holds
        todo.extend(gc.get_referents(item))
    return False


def said(text: str, room: str) -> Message:
    return Message(
        id=0, room=room, uid="u1", name="Quiet Otter", role=None, kind="say", text=text, ts=0.0
    )


def _ignore(*_: object) -> None:
    return None


async def test_memory_broker_forgets_text_and_rooms_after_the_window() -> None:
    clock = Clock()
    broker = MemoryBroker(10.0, 500, clock)
    await broker.start(_ignore, _ignore)
    try:
        secret = f"secret-{uuid.uuid4().hex}"
        await broker.join_room("quiet", Member("u2", "Kind Owl"))
        await broker.publish(said(secret, "empty"), None)
        await broker.publish(said(secret, "quiet"), None)
        assert reachable_text(broker, secret)  # the walk does find it
        clock.now += 5.0
        broker.sweep()
        assert reachable_text(broker, secret)  # within the window: kept for resuming
        assert (await broker.history("empty", 0))[0][0].text == secret

        clock.now += 6.0  # past the window: the text is gone, whoever is in the room
        broker.sweep()
        assert not reachable_text(broker, secret)
        assert (await broker.history("quiet", 0))[0] == []
        assert await broker.last_id("empty") == 1  # ids still only grow for a while

        clock.now += ROOM_TTL_FACTOR * 10.0
        broker.sweep()
        assert await broker.last_id("empty") == 0  # nobody there: the room is forgotten
        assert await broker.last_id("quiet") == 1  # people there: it stays
        assert not reachable_text(broker, "empty")
    finally:
        await broker.stop()


async def test_a_server_forgets_what_was_said_once_the_window_ends() -> None:
    server = await start_server(retention_seconds=1.0, resume_grace=0.2)
    try:
        port = server.http_port
        alice = await WsClient.open(port)
        secret = f"secret-{uuid.uuid4().hex}"
        await alice.request({"type": "join", "room": "passing"}, "joined")
        await alice.send({"type": "say", "room": "passing", "text": secret})
        await alice.expect("message", text=secret)
        await alice.request({"type": "quit"}, "bye")
        await alice.close()
        assert reachable_text(server, secret)  # still in the window
        await eventually(lambda: not reachable_text(server, secret), timeout=10.0, step=0.3)
        assert not reachable_text(server, secret)
    finally:
        await server.stop()


async def _spam_round(broker: MemoryBroker, rooms: int) -> None:
    """`rooms` one-message rooms, each opened, used once and left (as a spammer would)."""
    for n in range(rooms):
        room = f"spam-{n}"
        await broker.join_room(room, Member("u9", "Spam"))
        await broker.publish(said(f"junk {n} {uuid.uuid4().hex}", room), None)
        await broker.leave_room(room, "u9")


async def test_memory_returns_to_baseline_after_a_room_spam_run() -> None:
    clock = Clock()
    broker = MemoryBroker(10.0, 500, clock)
    await broker.start(_ignore, _ignore)
    tracemalloc.start()
    try:
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            await _spam_round(broker, 2000)
            assert tracemalloc.get_traced_memory()[0] > baseline + 500_000  # it did hold them
            clock.now += (ROOM_TTL_FACTOR + 1) * 10.0
            broker.sweep()
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            assert after < baseline + 200_000, (baseline, after)
    finally:
        tracemalloc.stop()
        await broker.stop()


@pytest.mark.redis
async def test_redis_history_and_rooms_expire(redis_server: RedisServer) -> None:
    prefix = f"x{uuid.uuid4().hex[:10]}:"
    broker = make_broker(
        redis_server.url(prefix),
        retention_seconds=1.0,
        retention_messages=50,
        wallclock=time.time,
        secret=TEST_ADDRESS_KEY.encode(),
    )
    heard: list[Event] = []
    await broker.start(lambda room, event, sender, ref: heard.append(event), _ignore)
    plain = redis.Redis(port=redis_server.port)
    try:
        await broker.publish(said("soon gone", "passing"), None)
        hist_ttl = plain.pttl(f"{prefix}hist:passing")
        seq_ttl = plain.pttl(f"{prefix}seq:passing")
        assert 0 < hist_ttl <= 1000
        assert 1000 < seq_ttl <= ROOM_TTL_FACTOR * 1000
        assert await eventually(lambda: not plain.exists(f"{prefix}hist:passing"), 5.0)
        assert (await broker.history("passing", 0))[0] == []
        assert await eventually(lambda: not plain.exists(f"{prefix}seq:passing"), 5.0)
        assert await broker.last_id("passing") == 0
    finally:
        await broker.stop()
        plain.close()
        delete_prefix(redis_server, prefix)


async def test_rooms_opened_are_capped_per_person_and_per_node() -> None:
    server = await start_server(new_rooms_per_person=2, max_rooms_per_node=4)
    try:
        port = server.http_port
        alice, bob, carol = [await WsClient.open(port) for _ in range(3)]
        for room in ("r1", "r2"):
            await alice.request({"type": "join", "room": room}, "joined")
        refused = await alice.request({"type": "join", "room": "r3"}, "error")
        assert refused["code"] == "too_many_rooms"
        assert "opened many new rooms" in refused["message"]
        await bob.request({"type": "join", "room": "r3"}, "joined")  # bob's own first
        await alice.request({"type": "join", "room": "r3"}, "joined")  # it has people now
        # lobby, r1, r2 and r3 have people: this node holds no more
        refused = await carol.request({"type": "join", "room": "r4"}, "error")
        assert refused["code"] == "too_many_rooms"
        assert "4 rooms open" in refused["message"]
        await carol.request({"type": "join", "room": "r1"}, "joined")
        await alice.send({"type": "say", "room": "r1", "text": "still here"})
        await carol.expect("message", text="still here")
    finally:
        await server.stop()
