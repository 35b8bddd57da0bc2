"""One-to-one matching across nodes sharing a real Redis (CONTRACT §8, §10).

Two in-process nodes on a redis-server of this module's own (spare port); a seeker and a
listener on different nodes must not be able to tell.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chatsupport import ChatServer
from chatsupport.core.roles import hash_line

from ..core.test_matching import TOKENS, listener, say, seeker
from ..core.test_resume import cut, resume, texts
from ..helpers import WsClient, start_server
from ..redis_server import RedisServer, delete_prefix, redis_server_fixture

pytestmark = pytest.mark.redis

redis_server = pytest.fixture(scope="session")(redis_server_fixture)


@pytest.fixture
def url(redis_server: RedisServer) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    yield redis_server.url(prefix)
    delete_prefix(redis_server, prefix)


@asynccontextmanager
async def two_nodes(tmp_path: Path, url: str, **overrides: Any) -> AsyncIterator[list[ChatServer]]:
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(hash_line(role, token) + "\n" for role, token in TOKENS))
    servers: list[ChatServer] = []
    try:
        for _ in range(2):
            servers.append(await start_server(broker=url, tokens_file=str(tokens), **overrides))
        yield servers
    finally:
        for server in servers:
            await server.stop()


async def matched(ws: WsClient) -> dict[str, Any]:
    return await ws.expect("matched")


async def test_seeker_on_one_node_talks_privately_with_a_listener_on_the_other(
    tmp_path: Path, url: str
) -> None:
    async with two_nodes(tmp_path, url) as (one, two):
        lis = await listener(two)
        ask = await seeker(one, position=1)
        to_seeker, to_listener = await matched(ask), await matched(lis)
        room = to_seeker["room"]
        assert room.startswith("dm-") and to_listener["room"] == room
        assert to_seeker["partner"]["role"] == "listener"
        assert "role" not in to_listener["partner"]  # an anonymous seeker
        await say(ask, room, "is anyone there?")
        heard = await lis.expect("message", room=room)
        assert heard["text"] == "is anyone there?"
        await say(lis, room, "yes, I'm here")
        assert (await ask.expect("message", room=room))["text"] == "yes, I'm here"


async def test_three_seekers_on_both_nodes_are_served_in_order(tmp_path: Path, url: str) -> None:
    async with two_nodes(tmp_path, url) as (one, two):
        first = await seeker(one, position=1)
        second = await seeker(two, position=2)
        third = await seeker(one, position=3)
        lis = await listener(two)
        room = (await matched(first))["room"]
        assert (await matched(lis))["room"] == room
        await second.expect("queue", position=1)  # told across nodes as the queue moves
        await third.expect("queue", position=2)
        await first.request({"type": "leave", "room": room}, "left")
        await lis.expect("ended", room=room, reason="partner_left")
        room = (await matched(second))["room"]
        assert (await matched(lis))["room"] == room
        await third.expect("queue", position=1)
        await lis.request({"type": "leave", "room": room}, "left")
        await second.expect("ended", room=room, reason="partner_left")
        room = (await matched(third))["room"]
        assert (await matched(lis))["room"] == room


async def test_leaving_on_node_two_ends_it_on_node_one_and_frees_the_listener(
    tmp_path: Path, url: str
) -> None:
    async with two_nodes(tmp_path, url) as (one, two):
        lis = await listener(two)
        ask = await seeker(one)
        room = (await matched(ask))["room"]
        await matched(lis)
        await lis.request({"type": "leave", "room": room}, "left")
        await ask.expect("ended", room=room, reason="partner_left")
        # Out of the room on node one: what the seeker says there is refused.
        refused = await ask.request({"type": "say", "room": room, "text": "hello?"}, "error")
        assert refused["code"] == "not_in_room"
        # The listener is free again, for a seeker on either node.
        nxt = await seeker(one)
        again = (await matched(nxt))["room"]
        assert again != room and (await matched(lis))["room"] == again


async def test_a_disconnect_on_node_one_ends_it_on_node_two(tmp_path: Path, url: str) -> None:
    async with two_nodes(tmp_path, url, resume_grace=0.0) as (one, two):
        lis = await listener(two)
        ask = await seeker(one)
        room = (await matched(ask))["room"]
        await matched(lis)
        await ask.close()
        await lis.expect("ended", room=room, reason="partner_disconnected", timeout=15.0)
        nxt = await seeker(two)
        assert (await matched(nxt))["room"] == (await matched(lis))["room"]


async def test_a_third_person_on_either_node_cannot_join_or_list_the_room(
    tmp_path: Path, url: str
) -> None:
    async with two_nodes(tmp_path, url) as (one, two):
        lis = await listener(two)
        ask = await seeker(one)
        room = (await matched(ask))["room"]
        await matched(lis)
        for node in (one, two):
            other = await WsClient.open(node.http_port)
            refused = await other.request({"type": "join", "room": room}, "error")
            assert refused["code"] == "forbidden"
            refused = await other.request({"type": "who", "room": room}, "error")
            assert refused["code"] == "forbidden"
            listed = await other.request({"type": "rooms"}, "rooms")
            assert room not in str(listed)
        await say(ask, room, "only for you")
        assert (await lis.expect("message", room=room))["text"] == "only for you"


async def test_a_listener_on_node_two_hands_over_to_one_on_node_one(
    tmp_path: Path, url: str
) -> None:
    async with two_nodes(tmp_path, url) as (one, two):
        old = await listener(two)
        seek = await seeker(one)
        room = (await matched(seek))["room"]
        await matched(old)
        await say(seek, room, "it started last spring")
        await say(old, room, "what happened then?")
        new = await listener(one, token="lis-2")
        ended = await old.request({"type": "handoff", "room": room}, "ended")
        assert ended["reason"] == "handed_over"
        assert (await new.expect("matched", room=room))["partner"]["uid"] == seek.uid
        history = [(await new.expect("message", room=room))["text"] for _ in range(2)]
        assert history == ["it started last spring", "what happened then?"]
        notice = await seek.expect("notice", name=new.name)
        assert notice["kind"] == "handoff"
        await say(seek, room, "thank you for staying")
        assert (await new.expect("message", room=room))["text"] == "thank you for staying"
        refused = await old.request({"type": "join", "room": room}, "error")
        assert refused["code"] == "forbidden"
        nxt = await seeker(two)  # the old listener is free again
        assert (await matched(nxt))["partner"]["uid"] == old.uid


async def test_a_seeker_in_crisis_on_node_two_goes_first(tmp_path: Path, url: str) -> None:
    async with two_nodes(tmp_path, url) as (one, two):
        assert two.chat is not None
        calm = await seeker(one, position=1)
        urgent = await WsClient.open(two.http_port)
        two.chat.sessions[urgent.uid].crisis = True  # as the safety work sets it
        assert (await urgent.request({"type": "talk"}, "queue"))["position"] == 1
        await calm.expect("queue", position=2)
        lis = await listener(one)
        assert (await matched(lis))["partner"]["uid"] == urgent.uid
        await matched(urgent)


async def test_a_seeker_who_resumes_on_the_other_node_keeps_the_chat(
    tmp_path: Path, url: str
) -> None:
    async with two_nodes(tmp_path, url, resume_grace=60) as (one, two):
        lis = await listener(two)
        seek = await seeker(one)
        room = (await matched(seek))["room"]
        await matched(lis)
        await say(seek, room, "hello")
        first = await lis.expect("message", room=room)
        await cut(seek)
        await say(lis, room, "take your time")
        back, frames = await resume(two.http_port, seek.welcome["session"], {room: first["id"]})
        assert texts(frames) == ["take your time"]
        await say(back, room, "back again")
        assert (await lis.expect("message", room=room))["text"] == "back again"
        await back.request({"type": "leave", "room": room}, "left")
        await lis.expect("ended", room=room, reason="partner_left")
        nxt = await seeker(one)  # the listener is free again
        assert (await matched(nxt))["partner"]["uid"] == lis.uid


async def test_the_queue_holds_across_nodes_and_a_resume_crisis_first(
    tmp_path: Path, url: str
) -> None:
    """A seeker in crisis drops off node one and resumes on node two: still first, told
    where they stand at once, matched with a listener on node one who reads their note;
    the seeker behind them, on node two, hears of that listener (on node one)."""
    async with two_nodes(tmp_path, url) as (one, two):
        calm = await seeker(two, position=1)
        urgent = await WsClient.open(one.http_port)
        await urgent.request(
            {"type": "say", "room": "lobby", "text": "i just want to die"}, "message"
        )
        queued = await urgent.request({"type": "talk", "note": "i cannot sleep"}, "queue")
        assert (queued["position"], queued["listeners"]) == (1, 0)
        assert await calm.expect("queue", position=2)
        await cut(urgent)
        back, _ = await resume(two.http_port, urgent.welcome["session"], {"lobby": 0})
        assert (await back.expect("queue"))["position"] == 1  # told afresh, on node two

        lis = await listener(one)
        heard = await lis.expect("matched")
        assert heard["partner"]["uid"] == urgent.uid and heard["note"] == "i cannot sleep"
        assert (await back.expect("matched"))["partner"]["uid"] == lis.uid
        told = await calm.expect("queue", position=1, listeners=1)
        assert "wait" in told  # one wait is known now: an estimate from it
