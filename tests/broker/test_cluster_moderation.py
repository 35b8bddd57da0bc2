"""Moderation across nodes sharing a real Redis (CONTRACT §6, §10): bans, mutes, kicks,
locks and reports made on one node hold on the other.

Sync points: a node applies a change on receiving it from Redis's channel, in the order
it was published; so once a frame published after the change (a message, a notice) has
reached a client on the other node, that node knows the change too.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatsupport import ChatServer
from chatsupport.core.moderation import Moderation

from ..helpers import TextClient, WsClient, start_server
from ..mod_helpers import expect_kind, staff_tcp, staff_ws, write_tokens, ws_from
from ..redis_server import RedisServer, delete_prefix, redis_server_fixture

pytestmark = pytest.mark.redis

redis_server = pytest.fixture(scope="session")(redis_server_fixture)


@pytest.fixture
def url(redis_server: RedisServer) -> Iterator[str]:
    prefix = f"m{uuid.uuid4().hex[:10]}:"
    yield redis_server.url(prefix)
    delete_prefix(redis_server, prefix)


@contextlib.asynccontextmanager
async def two_nodes(url: str, tmp_path: Path) -> AsyncIterator[tuple[ChatServer, ChatServer]]:
    tokens = write_tokens(tmp_path)
    servers: list[ChatServer] = []
    try:
        for _ in range(2):
            servers.append(await start_server(broker=url, tokens_file=tokens))
        yield servers[0], servers[1]
    finally:
        for server in servers:
            await server.stop()


async def say(client: WsClient, text: str, room: str = "lobby") -> dict[str, Any]:
    return await client.request({"type": "say", "room": room, "text": text}, "message")


async def synced(speaker: WsClient, listener: WsClient) -> dict[str, Any]:
    """Once `listener` hears what `speaker` says now, its node has applied everything
    `speaker`'s node published before."""
    text = f"sync {uuid.uuid4().hex[:8]}"
    await say(speaker, text)
    return await listener.expect("message", text=text)


async def test_a_ban_on_node_one_holds_on_node_two(url: str, tmp_path: Path) -> None:
    async with two_nodes(url, tmp_path) as (a, b):
        mod = await staff_ws(a.http_port)
        target = await TextClient.open(a.tcp_port, local_addr="127.0.0.41")
        observer = await WsClient.open(b.http_port)
        frame = {"type": "ban", "name": target.name, "minutes": 30, "scope": "address"}
        reply = await mod.request(frame, "notice")
        assert (
            reply["text"] == f"{target.name} is banned for 30 minutes, their network for 30 minutes"
        )
        await target.expect("*** goodbye (banned)")
        await synced(mod, observer)

        again = await TextClient.open(b.tcp_port, local_addr="127.0.0.41", greet=False)
        assert (await again.line()).startswith("!! a moderator closed the chat to your network")
        refused = await ws_from(b.http_port, "127.0.0.41", welcome=False)
        assert (await refused.recv())["code"] == "banned"
        await WsClient.open(b.http_port, local_addr="127.0.0.42")  # another address is fine


async def test_a_ban_of_a_person_on_the_other_node(url: str, tmp_path: Path) -> None:
    async with two_nodes(url, tmp_path) as (a, b):
        mod = await staff_tcp(b.tcp_port)
        tab = "/ws?client=tab-1b6e0d4c9a2f7e35"
        target = await WsClient.open(a.http_port, path=tab, local_addr="127.0.0.43")
        await mod.send(f"/ban {target.name} 5 person")
        assert (
            await mod.expect(lambda s: "banned" in s) == f"-- {target.name} is banned for 5 minutes"
        )
        assert "banned you" in (await expect_kind(target, "banned"))["text"]
        assert (await target.expect("bye"))["reason"] == "banned"
        # Node a holds them: it bans their client's id everywhere on its next housekeeping tick.
        assert b.chat is not None
        for _ in range(300):
            if b.chat.feature(Moderation).state.blocked:
                break
            await asyncio.sleep(0.05)
        for node, address in ((b, "127.0.0.45"), (a, "127.0.0.43")):
            retry = await WsClient.open(node.http_port, path=tab, welcome=False, local_addr=address)
            assert (await retry.recv())["code"] == "banned"
        await ws_from(b.http_port, "127.0.0.43")  # their network is open to everyone else


async def test_unban_on_node_two_lifts_a_ban_set_on_node_one(url: str, tmp_path: Path) -> None:
    async with two_nodes(url, tmp_path) as (a, b):
        mod_a, mod_b = await staff_ws(a.http_port), await staff_ws(b.http_port)
        target = await ws_from(a.http_port, "127.0.0.44")
        await mod_a.request({"type": "ban", "uid": target.uid, "minutes": 30}, "notice")
        assert (await target.expect("bye"))["reason"] == "banned"
        await synced(mod_a, mod_b)
        lifted = await mod_b.request({"type": "unban", "name": target.name}, "notice")
        assert lifted["text"] == f"lifted for {target.name}: ban"
        await synced(mod_b, mod_a)
        await ws_from(a.http_port, "127.0.0.44")
        await ws_from(b.http_port, "127.0.0.44")


async def test_a_mute_from_node_two_for_a_person_on_node_one(url: str, tmp_path: Path) -> None:
    async with two_nodes(url, tmp_path) as (a, b):
        mod = await staff_ws(b.http_port)
        target, observer = await WsClient.open(a.http_port), await WsClient.open(b.http_port)
        reply = await mod.request({"type": "mute", "name": target.name, "minutes": 10}, "notice")
        assert reply["text"] == f"{target.name} is muted for 10 minutes"
        assert "muted you for 10 minutes" in (await expect_kind(target, "mute"))["text"]
        refused = await target.request({"type": "say", "room": "lobby", "text": "x"}, "error")
        assert refused["code"] == "muted"

        lifted = await mod.request({"type": "unban", "uid": target.uid}, "notice")
        assert lifted["text"] == f"lifted for {target.name}: mute"
        await expect_kind(target, "unmute")
        await say(target, "free again")
        await observer.expect("message", text="free again")


async def test_a_kick_across_nodes_ends_the_session_for_good(url: str, tmp_path: Path) -> None:
    async with two_nodes(url, tmp_path) as (a, b):
        mod = await staff_tcp(a.tcp_port)
        target, other = await WsClient.open(b.http_port), await WsClient.open(a.http_port)
        await mod.send(f"/kick {target.name}")
        assert await mod.expect(lambda s: "disconnected" in s) == (
            f"-- {target.name} was disconnected"
        )
        assert "disconnected you" in (await expect_kind(target, "kicked"))["text"]
        assert (await target.expect("bye"))["reason"] == "kicked"
        await other.expect("presence", event="leave", uid=target.uid)
        for port in (a.http_port, b.http_port):  # not resumable, on either node
            again = await WsClient.open(port)
            resumed = await again.request(
                {"type": "resume", "session": target.welcome["session"], "last": {}}, "resumed"
            )
            assert resumed["complete"] is False and again.uid != target.uid


async def test_a_lock_on_one_node_holds_on_the_other(url: str, tmp_path: Path) -> None:
    async with two_nodes(url, tmp_path) as (a, b):
        mod = await staff_ws(a.http_port)
        inside = await WsClient.open(b.http_port)
        await inside.request({"type": "join", "room": "raid"}, "joined")
        outside = await WsClient.open(b.http_port)
        await mod.request({"type": "lock", "room": "raid"}, "notice")
        assert "locked" in (await expect_kind(inside, "lock"))["text"]
        refused = await outside.request({"type": "join", "room": "raid"}, "error")
        assert refused["code"] == "forbidden"
        await say(inside, "still here", "raid")

        await mod.request({"type": "unlock", "room": "raid"}, "notice")
        await expect_kind(inside, "unlock")
        await outside.request({"type": "join", "room": "raid"}, "joined")


async def test_a_shadow_mute_holds_on_the_other_node(url: str, tmp_path: Path) -> None:
    async with two_nodes(url, tmp_path) as (a, b):
        mod = await staff_ws(a.http_port)
        troll, other = await WsClient.open(a.http_port), await WsClient.open(b.http_port)
        away = await WsClient.open(b.http_port)
        await mod.request({"type": "shadow", "uid": troll.uid, "minutes": 10}, "notice")
        last = (await synced(mod, away))["id"]
        await away.close()
        await say(troll, "spam spam")  # they see their own message, as usual
        await synced(mod, other)
        assert not [f for f in other.backlog if f.get("text") == "spam spam"]
        # Nor is it replayed to someone resuming on the other node.
        back = await WsClient.open(b.http_port)
        await back.send(
            {"type": "resume", "session": away.welcome["session"], "last": {"lobby": last}}
        )
        await back.expect("resumed")
        replayed = [f["text"] for f in back.backlog if f["type"] == "message"]
        assert replayed and "spam spam" not in replayed


async def reported(node: ChatServer) -> tuple[WsClient, WsClient, dict[str, Any]]:
    """Someone on `node` says something nasty and someone else there reports it."""
    troll, reporter = await WsClient.open(node.http_port), await WsClient.open(node.http_port)
    bad = await say(troll, "go away loser")
    await reporter.request(
        {"type": "report", "id": bad["id"], "room": "lobby", "reason": "insults"}, "notice"
    )
    return troll, reporter, bad


async def test_a_report_on_node_one_is_listed_on_node_two(url: str, tmp_path: Path) -> None:
    async with two_nodes(url, tmp_path) as (a, b):
        mod = await staff_ws(b.http_port)
        troll, reporter, bad = await reported(a)
        live = await mod.expect("report")
        assert live["uid"] == troll.uid and live["evidence"][-1]["text"] == "go away loser"
        await mod.send({"type": "reports", "ref": "list"})
        listed = await mod.expect("report", ref="list")
        assert listed["id"] == live["id"] and listed["reporter"] == live["reporter"]
        assert (await mod.expect("notice", ref="list"))["text"].startswith("1 report(s)")
        # The same reporter on the other node is the same alias; a second report of it is
        # refused wherever it is made.
        again = await reporter.request(
            {"type": "report", "id": bad["id"], "room": "lobby", "reason": "x"}, "error"
        )
        assert "already" in again["message"]


async def test_a_moderator_who_resumes_on_node_two_gets_reports_there(
    url: str, tmp_path: Path
) -> None:
    """Node b rebuilds the moderator from node a's record: the staff channel comes too."""
    async with two_nodes(url, tmp_path) as (a, b):
        mod = await staff_ws(a.http_port)
        await mod.close()
        back = await WsClient.open(b.http_port)
        await back.send({"type": "resume", "session": mod.welcome["session"], "last": {}})
        await back.expect("resumed")
        assert b.chat is not None and b.chat.sessions[mod.uid].role == "mod"
        troll, _, _ = await reported(a)
        live = await back.expect("report")
        assert live["uid"] == troll.uid and live["evidence"][-1]["text"] == "go away loser"
