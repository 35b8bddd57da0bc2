"""Several nodes sharing a real Redis behave as one server (CONTRACT §5, §10).

Nodes are in-process ChatServers, or real `chatsupport serve` processes where a node must
die by SIGKILL. Tests that stop Redis run their own redis-server on a spare port.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from chatsupport import ChatServer
from chatsupport.broker.redis import RedisBroker
from chatsupport.core.events import Alert, Notice
from chatsupport.core.ports import Broker
from chatsupport.core.safety import Safety
from chatsupport.core.staff import MODS

from ..core.test_resume import cut, resume
from ..helpers import (
    FAST,
    WAIT,
    ServerProcess,
    TextClient,
    WsClient,
    abort_timers,
    eventually,
    start_server,
)
from ..mod_helpers import LISTENER_TOKEN, MOD_TOKEN, staff_ws, write_tokens
from ..redis_server import RedisServer, delete_prefix, free_port, redis_server_fixture

pytestmark = pytest.mark.redis


redis_server = pytest.fixture(scope="session")(redis_server_fixture)


@pytest.fixture
def prefix(redis_server: RedisServer) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}:"
    yield name
    delete_prefix(redis_server, name)


@pytest.fixture
def url(redis_server: RedisServer, prefix: str) -> str:
    return redis_server.url(prefix)


@contextlib.asynccontextmanager
async def nodes(url: str, count: int = 2, **overrides: Any) -> AsyncIterator[list[ChatServer]]:
    servers: list[ChatServer] = []
    try:
        for _ in range(count):
            servers.append(await start_server(broker=url, **overrides))
        yield servers
    finally:
        for server in servers:
            await server.stop()


def broker_of(server: ChatServer) -> Broker:
    assert server.chat is not None
    return server.chat.broker


async def say(client: WsClient, text: str, room: str = "lobby") -> dict[str, Any]:
    """Say `text` and wait until the server accepted it (our own copy comes back)."""
    return await client.request({"type": "say", "room": room, "text": text}, "message")


async def first(
    client: WsClient, test: Callable[[dict[str, Any]], bool], timeout: float = WAIT
) -> dict[str, Any]:
    """The first frame passing `test`; frames skipped are kept for later."""
    skipped: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            frame = await client.recv(max(deadline - loop.time(), 0.01))
            if test(frame):
                return frame
            skipped.append(frame)
    finally:
        client.backlog = skipped + client.backlog


async def reply_to(client: WsClient, ref: str) -> dict[str, Any]:
    """The reply (a message or an error) to the frame sent with `ref`."""
    return await first(client, lambda frame: frame.get("ref") == ref)


async def notice(client: WsClient, kind: str, timeout: float = 30) -> dict[str, Any]:
    return await first(client, lambda f: f["type"] == "notice" and f["kind"] == kind, timeout)


async def say_until_accepted(client: WsClient, text: str, tries: int = 100) -> dict[str, Any]:
    """What a client does in a blip: try again (a little later) while refused `unavailable`."""
    for attempt in range(tries):
        ref = f"{text}/{attempt}"
        await client.send({"type": "say", "room": "lobby", "text": text, "ref": ref})
        reply = await reply_to(client, ref)
        if reply["type"] == "message":
            return reply
        assert reply["code"] == "unavailable", reply
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} was never accepted")


async def messages(client: WsClient, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(count):
        got.append(await client.expect("message", timeout=timeout))
    return got


async def http_get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# ---- chat across nodes --------------------------------------------------------------------
async def test_peers_on_two_nodes_chat(url: str) -> None:
    async with nodes(url) as (a, b):
        x = await WsClient.open(a.http_port)
        y = await WsClient.open(b.http_port)
        t = await TextClient.open(b.tcp_port)
        sent = await say(x, "hello from node a")
        assert (await y.expect("message", text="hello from node a"))["id"] == sent["id"]
        assert await t.expect(lambda s: "node a" in s) == f"<{x.name}> hello from node a"
        await t.send("hello from a terminal on node b")
        got = await x.expect("message", text="hello from a terminal on node b")
        assert got["name"] == t.name and got["id"] == sent["id"] + 1


async def test_three_senders_on_two_nodes_see_one_order(url: str) -> None:
    async with nodes(url) as (a, b):
        senders = [
            await WsClient.open(a.http_port),
            await WsClient.open(a.http_port),
            await WsClient.open(b.http_port),
        ]
        watchers = [await WsClient.open(a.http_port), await WsClient.open(b.http_port)]
        everyone = senders + watchers
        for client in everyone:  # everyone has seen everyone arrive: only messages follow
            await client.request({"type": "ping"}, "pong")
        per_sender = 25

        async def talk(index: int, client: WsClient) -> None:
            for n in range(per_sender):
                await client.send({"type": "say", "room": "lobby", "text": f"m {index} {n}"})

        collectors = [asyncio.create_task(messages(c, 3 * per_sender)) for c in everyone]
        await asyncio.gather(*(talk(i, c) for i, c in enumerate(senders)))
        seen = [[(m["id"], m["text"]) for m in got] for got in await asyncio.gather(*collectors)]
        for other in seen[1:]:
            assert other == seen[0]
        ids = [id_ for id_, _ in seen[0]]
        assert ids == list(range(ids[0], ids[0] + 3 * per_sender))
        for index in range(3):
            own = [text for _, text in seen[0] if text.startswith(f"m {index} ")]
            assert own == [f"m {index} {n}" for n in range(per_sender)]


async def test_resume_on_the_other_node_gets_exactly_what_was_missed(url: str) -> None:
    async with nodes(url) as (a, b):
        x = await WsClient.open(a.http_port)
        y = await WsClient.open(b.http_port)
        await say(y, "one")
        last = (await x.expect("message", text="one"))["id"]
        await x.close()
        missed = [(await say(y, f"missed {n}"))["id"] for n in range(3)]
        back = await WsClient.open(b.http_port)
        await back.send(
            {"type": "resume", "session": x.welcome["session"], "last": {"lobby": last}}
        )
        resumed = await back.expect("resumed")
        assert resumed == {"type": "resumed", "missed": 3, "complete": True}
        replayed = [f for f in back.backlog if f["type"] == "message"]
        assert [m["id"] for m in replayed] == missed
        assert [m["text"] for m in replayed] == ["missed 0", "missed 1", "missed 2"]
        back.backlog.clear()
        await say(y, "after")
        got = await back.expect("message", text="after")
        assert got["id"] == missed[-1] + 1
        # The same person, now on node b only; node a let go of them.
        who = await y.request({"type": "who", "room": "lobby"}, "who")
        uids = [m["uid"] for m in who["members"]]
        assert sorted(uids) == sorted([x.uid, y.uid])
        assert {m["name"] for m in who["members"] if m["uid"] == x.uid} == {x.name}
        assert a.chat is not None and x.uid not in a.chat.sessions
        await say(back, "i am back")
        assert (await y.expect("message", text="i am back"))["uid"] == x.uid


async def test_resume_first_on_the_other_node_comes_back_quietly(url: str) -> None:
    """`/ws?resume` on another node: the same person at once, exactly what was missed,
    and the room sees no leave or join (they were never shown as gone), only that they
    were away for a while."""
    async with nodes(url) as (a, b):
        x = await WsClient.open(a.http_port)
        y = await WsClient.open(b.http_port)
        base = (await say(x, "before"))["id"]
        await y.expect("message", text="before")
        y.backlog.clear()  # (one channel: x's arrival, if y saw it at all, came before this)
        x.ws.transport.abort()  # a lost network: no goodbye
        await x.close()
        missed = [(await say(y, f"missed {n}"))["id"] for n in range(5)]
        back = await WsClient.open(b.http_port, welcome=False, path="/ws?resume=1")
        session = x.welcome["session"]
        await back.send({"type": "resume", "session": session, "last": {"lobby": base}})
        welcome = await back.expect("welcome")
        assert (welcome["uid"], welcome["name"], welcome["session"]) == (x.uid, x.name, session)
        resumed = await back.expect("resumed")
        assert (resumed["missed"], resumed["complete"]) == (5, True)
        assert [f["id"] for f in back.backlog if f["type"] == "message"] == missed
        back_seen = await first(y, lambda f: f["type"] == "presence" and f["event"] == "back")
        assert back_seen["uid"] == x.uid
        await y.request({"type": "ping"}, "pong")
        seen = [f["event"] for f in y.backlog if f["type"] == "presence" and f["uid"] == x.uid]
        assert seen == ["away"]  # before it; nothing after


async def test_forget_leaves_nothing_to_resume_anywhere(
    url: str, prefix: str, redis_server: RedisServer
) -> None:
    async with nodes(url) as (a, b):
        x = await WsClient.open(a.http_port)
        await x.request({"type": "forget"}, "bye")
        token_hash = hashlib.sha256(x.welcome["session"].encode()).hexdigest()
        client = redis.asyncio.Redis(port=redis_server.port)
        try:
            for _ in range(100):  # node a drops the record once it has seen x go
                if await client.hget(f"{prefix}sess:{token_hash}", "rec") is None:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the resume record outlived forget")
        finally:
            await client.aclose()
        back = await WsClient.open(b.http_port)
        await back.send({"type": "resume", "session": x.welcome["session"], "last": {}})
        assert await back.expect("resumed") == {"type": "resumed", "missed": 0, "complete": False}
        assert back.uid != x.uid


async def test_resuming_on_another_node_ends_the_old_connection(url: str) -> None:
    async with nodes(url) as (a, b):
        x = await WsClient.open(a.http_port)
        y = await WsClient.open(b.http_port)
        again = await WsClient.open(b.http_port)
        await again.send({"type": "resume", "session": x.welcome["session"], "last": {}})
        await again.expect("resumed")
        assert (await x.expect("bye"))["reason"] == "resumed_elsewhere"
        await say(y, "to you")
        assert (await again.expect("message", text="to you"))["id"] > 0
        who = await y.request({"type": "who", "room": "lobby"}, "who")
        assert sorted(m["uid"] for m in who["members"]) == sorted([x.uid, y.uid])


async def test_a_node_stopped_for_a_restart_lets_its_peers_resume_elsewhere(url: str) -> None:
    async with nodes(url) as (a, b):
        x = await WsClient.open(a.http_port)
        y = await WsClient.open(b.http_port)
        await say(x, "see you")
        last = (await y.expect("message", text="see you"))["id"]
        await a.stop()
        assert (await x.expect("bye"))["reason"] == "server_shutdown"
        assert (await y.expect("presence", event="leave", uid=x.uid))["count"] == 1
        sent = await say(y, "while you moved")
        back = await WsClient.open(b.http_port)
        await back.send(
            {"type": "resume", "session": x.welcome["session"], "last": {"lobby": last}}
        )
        assert (await back.expect("resumed"))["complete"] is True
        assert [f["id"] for f in back.backlog if f["type"] == "message"] == [sent["id"]]
        # y saw: x left, the fresh connection joined, x joined, the fresh identity left.
        # (x's first join, published as y arrived, may reach y too: it is skipped here.)
        assert await y.expect("presence", event="join", uid=x.uid, count=3)
        assert await y.expect("presence", event="leave", uid=back.uid, count=2)


async def test_direct_reaches_the_person_on_whichever_node(url: str) -> None:
    async with nodes(url) as (a, b):
        y = await WsClient.open(b.http_port)
        await broker_of(a).direct(y.uid, Notice(kind="announce", text="just for you"))
        assert (await y.expect("notice"))["text"] == "just for you"


async def test_presence_counts_and_members_agree(url: str) -> None:
    async with nodes(url) as (a, b):
        x1, x2 = await WsClient.open(a.http_port), await WsClient.open(a.http_port)
        y = await WsClient.open(b.http_port)
        for client in (x1, x2, y):
            who = await client.request({"type": "who", "room": "lobby"}, "who")
            assert sorted(m["uid"] for m in who["members"]) == sorted([x1.uid, x2.uid, y.uid])
            rooms = await client.request({"type": "rooms"}, "rooms")
            assert rooms["rooms"] == [{"name": "lobby", "count": 3}]
        joined = await x1.request({"type": "join", "room": "quiet"}, "joined")
        assert joined["count"] == 1
        joined = await y.request({"type": "join", "room": "quiet"}, "joined")
        assert joined["count"] == 2
        assert (await x1.expect("presence", room="quiet", event="join"))["count"] == 2
        await y.request({"type": "leave", "room": "quiet"}, "left")
        assert (await x1.expect("presence", room="quiet", event="leave"))["count"] == 1
        for client in (x2, y):
            rooms = await client.request({"type": "rooms"}, "rooms")
            assert rooms["rooms"] == [{"name": "lobby", "count": 3}, {"name": "quiet", "count": 1}]


async def test_names_are_unique_across_nodes(url: str) -> None:
    async with nodes(url) as (a, b):
        x = await WsClient.open(a.http_port)
        y = await WsClient.open(b.http_port)
        await x.request({"type": "nick", "name": "Calm Heron"}, "notice")
        for fake in ("calm heron", "Calm Her0n"):
            refusal = await y.request({"type": "nick", "name": fake}, "error")
            assert refusal["code"] == "name_taken"
        await x.send({"type": "quit"})
        await x.expect("bye")
        for attempt in range(100):  # node a frees the name as soon as it has seen x go
            await y.send({"type": "nick", "name": "Calm Heron", "ref": f"n{attempt}"})
            reply = await reply_to(y, f"n{attempt}")
            if reply["type"] == "notice":
                assert reply["name"] == "Calm Heron"
                break
            assert reply["code"] == "name_taken"
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the name was never freed")


async def test_keyed_address_hash_is_shared(url: str) -> None:
    async with nodes(url) as (a, b):
        assert a.edge is not None and b.edge is not None
        assert a.edge.addresses.key == b.edge.addresses.key
        assert a.edge.addresses.of("192.0.2.7") == b.edge.addresses.of("192.0.2.7")


# ---- shared state for moderation and matching ---------------------------------------------
# Moderation is not on this branch yet: these test the generic API it is to move onto.
async def test_flags_set_on_one_node_hold_on_the_other(url: str) -> None:
    async with nodes(url) as (a, b):
        one, two = broker_of(a), broker_of(b)
        await one.set_flag("ban", "addr-1", 600, "spam")
        assert await two.get_flag("ban", "addr-1") == "spam"
        await two.set_flag("ban", "addr-2", 600)
        assert await one.flags("ban") == {"addr-1": "spam", "addr-2": "1"}
        assert await two.clear_flag("ban", "addr-1") is True
        assert await one.get_flag("ban", "addr-1") is None
        assert await one.clear_flag("ban", "addr-1") is False
        await one.set_flag("mute", "u1", 0.2)
        for _ in range(100):
            if await two.get_flag("mute", "u1") is None:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("a flag outlived its ttl")
        assert await two.flags("mute") == {}


async def test_queue_is_shared_ordered_and_taken_once(url: str) -> None:
    async with nodes(url) as (a, b):
        one, two = broker_of(a), broker_of(b)
        assert await one.enqueue("seekers", "u1", 600) == 1
        assert await two.enqueue("seekers", "u2", 600) == 2
        assert await one.enqueue("seekers", "u1", 600) == 1  # already queued: same place
        assert await two.enqueue("seekers", "u3", 600, priority=0) == 1
        assert await one.queued("seekers") == ["u3", "u1", "u2"]
        assert await two.reprioritise("seekers", "u2", 0) is True
        assert await one.queued("seekers") == ["u3", "u2", "u1"]
        assert await one.dequeue("seekers", "u2") == "u2"
        assert await two.dequeue("seekers", "u2") is None
        items = [f"s{n}" for n in range(10)]
        for item in items:
            await one.enqueue("many", item, 600)
        taken = await asyncio.gather(*(broker.dequeue("many") for broker in [one, two] * 10))
        assert sorted(t for t in taken if t is not None) == sorted(items)
        assert taken.count(None) == 10


# ---- bounded retention, nothing kept forever ----------------------------------------------
async def test_retention_is_bounded_and_every_key_expires(
    url: str, prefix: str, redis_server: RedisServer
) -> None:
    async with nodes(url, retention_messages=5) as (a, b):
        x = await WsClient.open(a.http_port)
        y = await WsClient.open(b.http_port)
        await y.request({"type": "nick", "name": "Quiet Reader"}, "notice")
        await broker_of(a).set_flag("ban", "k", 60)
        await broker_of(a).enqueue("seekers", "u1", 60)
        sent = [await say(x, f"n {n}") for n in range(12)]
        back = await WsClient.open(b.http_port)
        await back.send({"type": "resume", "session": y.welcome["session"], "last": {"lobby": 0}})
        assert await back.expect("resumed") == {"type": "resumed", "missed": 5, "complete": False}
        replayed = [f["id"] for f in back.backlog if f["type"] == "message"]
        assert replayed == [m["id"] for m in sent[-5:]]
        client = redis.asyncio.Redis(port=redis_server.port)
        try:
            assert await client.xlen(f"{prefix}hist:lobby") == 5
            keys = [key async for key in client.scan_iter(match=prefix + "*")]
            kinds = {key.decode()[len(prefix) :].split(":")[0] for key in keys}
            assert {"seq", "hist", "nodes", "m", "nr", "name", "sess", "keycheck", "flags"} <= kinds
            assert "secret" not in kinds  # derived from the operator's secret, never stored
            assert "queue" in kinds
            for key in keys:
                assert await client.pttl(key) > 0, key
        finally:
            await client.aclose()


# ---- Redis outage -------------------------------------------------------------------------
async def test_redis_outage_refuses_then_recovers_without_loss() -> None:
    own = RedisServer().start()
    try:
        async with nodes(own.url()) as (a, b):
            x = await WsClient.open(a.http_port)
            y = await WsClient.open(b.http_port)
            t = await TextClient.open(a.tcp_port)
            before = [await say(x, f"before {n}") for n in range(3)]
            own.stop()
            for client in (x, y):
                told = await notice(client, "unavailable")
                assert "interrupted" in told["text"]
            assert (await t.expect(lambda s: "interrupted" in s, timeout=15)).startswith("***")
            status, health = await http_get(a.http_port, "/healthz")
            assert (status, health["status"], health["broker_ok"]) == (503, "degraded", False)
            refusal = await x.request({"type": "say", "room": "lobby", "text": "lost?"}, "error")
            assert refusal["code"] == "unavailable"
            await t.send("also refused")
            assert (await t.expect(lambda s: s.startswith("!!"))).startswith("!! delivery is")
            late = await WsClient.open(b.http_port)  # a newcomer is told too
            await notice(late, "unavailable")

            own.start()  # an empty Redis on the same port: nothing was persisted
            for client in (x, y, late):
                await notice(client, "available")
            await t.expect(lambda s: "delivery is back" in s, timeout=30)
            assert (await http_get(b.http_port, "/healthz"))[0] == 200
            after = [await say(y, f"after {n}") for n in range(3)]

            accepted = [(m["id"], m["text"]) for m in before + after]
            ids = [id_ for id_, _ in accepted]
            assert ids == sorted(set(ids))  # ids kept growing although Redis forgot them
            seen_by_y = [(m["id"], m["text"]) for m in await messages(y, 3)] + [
                (m["id"], m["text"]) for m in after
            ]
            seen_by_x = [(m["id"], m["text"]) for m in before] + [
                (m["id"], m["text"]) for m in await messages(x, 3)
            ]
            assert seen_by_x == seen_by_y == accepted
            for client in (x, y):  # and nothing else arrives: no message twice, one notice
                await client.request({"type": "ping"}, "pong")
                extra = [f["type"] for f in client.backlog if f["type"] in ("message", "notice")]
                assert extra == []
            # y's next line is a barrier for t: y's lines reach t in the order y sent them.
            await say(y, "barrier")
            barrier = f"<{y.name}> barrier"
            lines = [await t.expect(lambda s: s.startswith("<"))]
            for _ in range(100):
                if lines[-1] == barrier:
                    break
                lines.append(await t.expect(lambda s: s.startswith("<")))
            assert lines == [*(f"<{y.name}> after {n}" for n in range(3)), barrier]
            # What resume needs was written back too: x can move to node b.
            await x.close()
            back = await WsClient.open(b.http_port)
            last = {"lobby": seen_by_x[-1][0]}
            await back.send({"type": "resume", "session": x.welcome["session"], "last": last})
            assert (await back.expect("resumed"))["complete"] is True
            assert (await say(back, "moved"))["uid"] == x.uid
    finally:
        own.stop()


async def test_a_message_refused_while_redis_stalls_never_shows_up_later() -> None:
    own = RedisServer().start()
    try:
        async with nodes(own.url()) as (a, b):
            x = await WsClient.open(a.http_port)
            y = await WsClient.open(b.http_port)
            await say(x, "before")
            await y.expect("message", text="before")
            own.pause()  # Redis stops answering but keeps what it was sent
            await x.send({"type": "say", "room": "lobby", "text": "refused", "ref": "late"})
            assert (await reply_to(x, "late"))["code"] == "unavailable"  # after the timeout
            own.resume()  # now Redis reads the stale publish: it must not run
            await notice(x, "available")  # (node b may not have needed Redis meanwhile)
            sent = await say(x, "after")
            assert (await y.expect("message", text="after"))["id"] == sent["id"]
            for client in (x, y):
                await client.request({"type": "ping"}, "pong")
                shown = [f["text"] for f in client.backlog if f["type"] == "message"]
                assert "refused" not in shown
            history, complete = await broker_of(b).history("lobby", 0)
            assert [m.text for m in history] == ["before", "after"] and complete
    finally:
        own.resume()
        own.stop()


async def test_a_resume_during_a_redis_stall_is_answered_once_and_taken_up_when_it_is_back() -> (
    None
):
    """A seeker waiting for a listener loses their connection while Redis stalls, and comes
    back before it answers: the resume is answered once (`resumed`, cut short `unavailable`),
    never also refused later, and once Redis is back the seeker is told their place again."""
    own = RedisServer().start()
    server = await start_server(broker=own.url())
    deadlines = abort_timers()  # other tests' (the event loop is shared)
    try:
        seeker = await WsClient.open(server.http_port)
        await seeker.request({"type": "talk"}, "queue")
        await cut(seeker)
        own.pause()
        try:
            back, frames = await resume(server.http_port, seeker.welcome["session"], {"lobby": 0})
        finally:
            own.resume()
        assert frames[-1] == {
            "type": "resumed",
            "missed": 0,
            "complete": False,
            "reason": "unavailable",
            "ref": "back",
        }
        await notice(back, "available")
        place = await back.expect("queue", timeout=15)  # taken up at a tick that reaches Redis
        assert place["position"] == 1
        await back.request({"type": "ping"}, "pong")
        late = [f for f in [*frames, *back.backlog] if f["type"] == "error"]
        assert late == []  # the resume was answered once
        # The old connection was lost before its session moved: the deadline that cuts a
        # peer who never reads is not set on it (it would hold the transport for 10 s).
        assert abort_timers() - deadlines == set()
    finally:
        await server.stop()
        own.resume()
        own.stop()


async def test_crisis_words_in_a_private_chat_during_a_redis_stall_reach_the_listener_later(
    tmp_path: Path,
) -> None:
    """A seeker writes crisis words to their listener while Redis stalls: the message is
    refused (delivery is interrupted) but the seeker is offered help lines at once, and the
    listener, who could not be told then, is told once Redis answers again: late, not lost."""
    own = RedisServer().start()
    server = await start_server(broker=own.url(), tokens_file=write_tokens(tmp_path))
    try:
        listener = await staff_ws(server.http_port, LISTENER_TOKEN)
        await listener.request({"type": "listen", "on": True}, "notice")
        seeker = await WsClient.open(server.http_port)
        await seeker.request({"type": "talk"}, "queue")
        room = (await seeker.expect("matched"))["room"]
        await listener.expect("matched", room=room)
        assert server.chat is not None
        safety = server.chat.feature(Safety)
        words = "i just want to die"
        own.pause()
        try:
            await seeker.send({"type": "say", "room": room, "text": words, "ref": "c"})
            assert (await reply_to(seeker, "c"))["code"] == "unavailable"
            help_lines = await notice(seeker, "resources")
            assert help_lines["resources"]  # the help lines themselves, at once
            assert await eventually(lambda: len(safety.untold) == 1, 15.0)  # not told yet
        finally:
            own.resume()
        alert = await listener.expect("alert", timeout=30)
        assert (alert["kind"], alert["room"], alert["text"]) == ("crisis", room, words)
        # the listener is told before the moderators' notice finishes, so the count follows
        counters = server.chat.counters
        assert await eventually(lambda: counters.get("crisis_alerts_late") == 1)
        assert not safety.untold
    finally:
        await server.stop()
        own.resume()
        own.stop()


async def test_a_waiting_seekers_crisis_words_during_a_redis_stall_move_them_ahead_later(
    tmp_path: Path,
) -> None:
    """Two seekers wait for a listener; the second writes crisis words while Redis stalls.
    The message is refused once (`unavailable`), help lines come at once, and once Redis
    answers again the seeker is moved to the front of the queue. Their `talk`, answered
    (`queue`) just before the stall, is never refused afterwards by the work that followed
    the answer (a page would have said one-to-one chats are not available)."""
    own = RedisServer().start()
    server = await start_server(broker=own.url(), tokens_file=write_tokens(tmp_path))
    try:
        first = await WsClient.open(server.http_port)
        await first.request({"type": "talk"}, "queue")
        second = await WsClient.open(server.http_port)
        assert (await second.request({"type": "talk"}, "queue"))["position"] == 2
        own.pause()
        try:
            await second.send({"type": "say", "text": "i want to end my life", "ref": "c"})
            assert (await reply_to(second, "c"))["code"] == "unavailable"
            assert (await notice(second, "resources"))["resources"]
        finally:
            own.resume()
        place = await second.expect("queue", timeout=30, position=1)  # ahead, once it could be
        assert place["position"] == 1
        await second.request({"type": "ping"}, "pong")
        errors = [f for f in second.backlog if f["type"] == "error"]
        assert errors == []  # refused once, nothing more
    finally:
        await server.stop()
        own.resume()
        own.stop()


async def test_crisis_words_in_a_public_room_during_a_redis_stall_reach_every_nodes_staff(
    tmp_path: Path,
) -> None:
    """Crisis words in a public room while Redis stalls: this node's moderator is told at
    once (the alert cannot cross to other nodes), the staff of the other node once Redis is
    back, and nobody twice."""
    own = RedisServer().start()
    tokens = write_tokens(tmp_path)
    url = own.url()  # one key prefix: the two nodes are one server
    a = await start_server(broker=url, tokens_file=tokens)
    b = await start_server(broker=url, tokens_file=tokens)
    try:
        mod_here = await staff_ws(a.http_port, MOD_TOKEN)
        mod_there = await staff_ws(b.http_port, MOD_TOKEN)
        listener_there = await staff_ws(b.http_port, LISTENER_TOKEN)
        seeker = await WsClient.open(a.http_port)
        assert a.chat is not None
        safety = a.chat.feature(Safety)
        words = "i just want to die"
        own.pause()
        try:
            await seeker.send({"type": "say", "text": words, "ref": "c"})
            assert (await reply_to(seeker, "c"))["code"] == "unavailable"
            assert (await notice(seeker, "resources"))["resources"]
            here = await mod_here.expect("alert", timeout=30)  # this node's staff: at once
            assert (here["kind"], here["text"]) == ("crisis", words)
            assert await eventually(lambda: len(safety.untold) == 1, 15.0)  # others: not yet
        finally:
            own.resume()

        for staff_there in (mod_there, listener_there):
            alert = await staff_there.expect("alert", timeout=30)
            assert (alert["kind"], alert["room"], alert["text"]) == ("crisis", "lobby", words)
        counters = a.chat.counters
        assert await eventually(lambda: counters.get("crisis_alerts_late") == 1)
        assert not safety.untold
        for person in (mod_here, mod_there, listener_there):
            await person.request({"type": "ping"}, "pong")
            assert [f for f in person.backlog if f["type"] == "alert"] == []  # told once
    finally:
        await a.stop()
        await b.stop()
        own.resume()
        own.stop()


def cut_subscription(redis_server: RedisServer, node: ChatServer) -> set[int]:
    """Kill the node's subscriber connection, as a network blip does; the ids of its
    subscriber connections before (a new one means it reconnected)."""
    broker = broker_of(node)
    assert isinstance(broker, RedisBroker)
    with contextlib.closing(redis.Redis(port=redis_server.port)) as admin:
        mine = [
            client
            for client in admin.client_list(_type="pubsub")
            if client["name"] == f"chatsupport-{broker.node}"
        ]
        assert sum(int(admin.client_kill_filter(_id=client["id"])) for client in mine) == 1
    return {int(client["id"]) for client in mine}


async def resubscribed(redis_server: RedisServer, node: ChatServer, before: set[int]) -> bool:
    """The node subscribed again and has resynchronised (it is up)."""
    broker = broker_of(node)
    assert isinstance(broker, RedisBroker)
    with contextlib.closing(redis.Redis(port=redis_server.port)) as admin:

        def again() -> bool:
            clients = admin.client_list(_type="pubsub")
            name = f"chatsupport-{broker.node}"
            return any(c["name"] == name and int(c["id"]) not in before for c in clients)

        return await eventually(again, 15.0) and await eventually(lambda: broker.link.up, 15.0)


async def test_a_late_staff_alert_reaches_a_node_that_was_reconnecting(
    url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A late alert (sent once Redis is back, to every node but the one whose staff heard it
    during the outage) goes out while node b is reconnecting: b reads it when it
    resynchronises, and its moderator is told once, even when b reconnects again later."""
    async with nodes(url, tokens_file=write_tokens(tmp_path)) as (a, b):
        mod_there = await staff_ws(b.http_port, MOD_TOKEN)
        alert = Alert(kind="crisis", room="lobby", uid="u1", name="Quiet Otter", text="help")
        before = cut_subscription(redis_server, b)
        assert await broker_of(a).signal(MODS, alert, None, elsewhere=True)
        got = await mod_there.expect("alert", timeout=30)
        assert (got["kind"], got["text"]) == ("crisis", "help")
        assert await resubscribed(redis_server, b, before)
        again = cut_subscription(redis_server, b)  # b reads `P late` again: not told twice
        assert await resubscribed(redis_server, b, before | again)
        await mod_there.request({"type": "ping"}, "pong")
        assert [f for f in mod_there.backlog if f["type"] == "alert"] == []


async def test_a_cut_subscription_is_caught_up_from_the_stream(
    url: str, redis_server: RedisServer
) -> None:
    """Node b's subscription is cut while x (on node a) talks: whatever b missed meanwhile
    it reads from the stream, so y gets every message once, in order."""
    async with nodes(url) as (a, b):
        x = await WsClient.open(a.http_port)
        y = await WsClient.open(b.http_port)
        broker = broker_of(b)
        assert isinstance(broker, RedisBroker)
        node_b = broker.node
        with contextlib.closing(redis.Redis(port=redis_server.port)) as admin:
            cut = 0
            for client in admin.client_list(_type="pubsub"):
                if client["name"] == f"chatsupport-{node_b}":
                    cut += int(admin.client_kill_filter(_id=client["id"]))
            assert cut == 1
        accepted = [await say_until_accepted(x, f"m {n}") for n in range(20)]
        got = await messages(y, 20)
        assert [(m["id"], m["text"]) for m in got] == [(m["id"], m["text"]) for m in accepted]
        await y.request({"type": "ping"}, "pong")
        assert not [f for f in y.backlog if f["type"] == "message"]


def test_serve_says_plainly_when_redis_is_unreachable() -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatsupport",
            "serve",
            "--broker",
            nowhere,
            "--http-port",
            "0",
            "--tcp-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ServerProcess().env,
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("chatsupport: cannot reach Redis at 127.0.0.1:")
    assert "Traceback" not in done.stderr


# ---- a node that dies ----------------------------------------------------------------------
def serve(url: str) -> ServerProcess:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]
    return ServerProcess("--broker", url, "--tcp-port", "0", "--http-port", "0", *flags).start()


async def test_peers_of_a_killed_node_resume_on_another(
    redis_server: RedisServer, prefix: str
) -> None:
    url = redis_server.url(prefix, lease="2")
    one, two = serve(url), serve(url)
    try:
        p1, p2 = await WsClient.open(one.port("http")), await WsClient.open(one.port("http"))
        gone = await WsClient.open(one.port("http"))  # never comes back
        q = await WsClient.open(two.port("http"))
        await say(q, "before")
        last = {}
        for peer in (p1, p2):
            last[peer.uid] = (await peer.expect("message", text="before"))["id"]
        assert one.signal(signal.SIGKILL) == -signal.SIGKILL
        missed = [(await say(q, f"while you were away {n}"))["id"] for n in range(4)]
        back = {}
        for peer in (p1, p2):
            again = await WsClient.open(two.port("http"))
            await again.send(
                {
                    "type": "resume",
                    "session": peer.welcome["session"],
                    "last": {"lobby": last[peer.uid]},
                }
            )
            assert await again.expect("resumed") == {
                "type": "resumed",
                "missed": 4,
                "complete": True,
            }
            assert [f["id"] for f in again.backlog if f["type"] == "message"] == missed
            again.backlog.clear()
            back[peer.uid] = again
        await say(back[p1.uid], "we made it")
        for client in (q, back[p2.uid]):
            assert (await client.expect("message", text="we made it"))["uid"] == p1.uid
        # Once node one's lease has run out, node two shows who is really gone, and only them.
        left = await q.expect("presence", timeout=30, event="leave", uid=gone.uid)
        assert left["count"] == 3
        who = await q.request({"type": "who", "room": "lobby"}, "who")
        assert sorted(m["uid"] for m in who["members"]) == sorted([p1.uid, p2.uid, q.uid])
    finally:
        one.stop()
        two.stop()


# ---- a node that stalls past its lease -----------------------------------------------------
async def frames_until(
    client: WsClient, test: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Every frame up to and including the first passing `test`, in order (bounded)."""
    seen: list[dict[str, Any]] = []
    for _ in range(1000):
        frame = await client.recv(30)
        seen.append(frame)
        if test(frame):
            return seen
    raise AssertionError("never came")


def presence_of(frames: list[dict[str, Any]], uid: str) -> list[str]:
    return [f["event"] for f in frames if f["type"] == "presence" and f["uid"] == uid]


async def test_a_node_stalled_past_its_lease_shows_its_people_back_before_they_speak(
    redis_server: RedisServer, prefix: str
) -> None:
    url = redis_server.url(prefix, lease="2")  # the lease, short: the stall outlasts it
    one, two = serve(url), serve(url)
    try:
        p = await WsClient.open(one.port("http"))  # speaks after the stall
        r = await WsClient.open(one.port("http"))  # beside p, on the stalled node
        q = await WsClient.open(two.port("http"))  # watches from the other node
        await say(p, "before")
        await q.expect("message", text="before")
        await r.expect("message", text="before")
        assert one.proc is not None
        one.proc.send_signal(signal.SIGSTOP)
        try:
            # Past the lease, node two reaps node one: its people are shown as gone, and
            # `who` agrees.
            for uid in (p.uid, r.uid):
                await q.expect("presence", timeout=30, event="leave", uid=uid)
            who = await q.request({"type": "who", "room": "lobby"}, "who")
            assert [m["uid"] for m in who["members"]] == [q.uid]
            await p.send({"type": "say", "room": "lobby", "text": "said while stalled", "ref": "s"})
        finally:
            one.proc.send_signal(signal.SIGCONT)

        # What p said during the stall is refused (`unavailable`) or comes after p is back.
        reply = await reply_to(p, "s")
        assert reply["type"] == "message" or reply["code"] == "unavailable", reply
        await say_until_accepted(p, "I am still here")
        seen = await frames_until(q, lambda f: f.get("text") == "I am still here")
        from_p = [i for i, f in enumerate(seen) if f["type"] == "message" and f["uid"] == p.uid]
        back = [i for i, f in enumerate(seen) if f["type"] == "presence" and f["uid"] == p.uid]
        assert back and seen[back[0]]["event"] == "join" and back[0] < from_p[0], seen
        assert presence_of(seen, r.uid)[-1:] == ["join"]  # shown back too, silent or not

        # Announced presence and `who` agree, on both nodes.
        everyone = sorted([p.uid, r.uid, q.uid])
        for client in (q, r):
            who = await client.request({"type": "who", "room": "lobby"}, "who")
            assert sorted(m["uid"] for m in who["members"]) == everyone
        assert seen[back[0]]["count"] == 3
        heard_by_r = await frames_until(r, lambda f: f.get("text") == "I am still here")
        said = presence_of(heard_by_r, p.uid)
        assert not said or said[-1] == "join", heard_by_r  # a `leave` r heard is undone
    finally:
        one.stop()
        two.stop()
