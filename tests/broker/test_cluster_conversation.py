"""Deleting a message, away/back and typing across two nodes sharing a real Redis: people
on different nodes must not be able to tell (CONTRACT §10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..core.test_matching import listener, nothing_more, say, seeker
from ..core.test_resume import cut, resume
from ..helpers import TextClient, WsClient
from ..mod_helpers import expect_kind, staff_ws, tcp_sync, texts
from .test_cluster_matching import redis_server, two_nodes, url

__all__ = ["redis_server", "url"]  # the fixtures, shared with test_cluster_matching

pytestmark = pytest.mark.redis


async def test_a_deletion_reaches_every_node_and_resume_there_honours_it(
    tmp_path: Path, url: str
) -> None:
    async with two_nodes(tmp_path, url) as (one, two):
        author = await WsClient.open(one.http_port)
        reader, tcp = await WsClient.open(two.http_port), await TextClient.open(two.tcp_port)
        away = await WsClient.open(one.http_port)
        seen = await author.request({"type": "say", "text": "I regret this"}, "message")
        await reader.expect("message", id=seen["id"])
        await away.expect("message", id=seen["id"])
        await cut(away)
        kept = await author.request({"type": "say", "text": "this stays"}, "message")
        ask = {"type": "delete", "room": "lobby", "id": seen["id"]}
        await author.request(ask, "deleted")
        gone = await reader.expect("deleted", id=seen["id"])
        assert (gone["uid"], gone["name"]) == (author.uid, author.name)
        assert f"-- a message from {author.name} was deleted" in await tcp_sync(tcp)
        # Resumed on the other node: the deleted message's words never come back.
        token = away.welcome["session"]
        _, frames = await resume(two.http_port, token, {"lobby": seen["id"]})
        assert texts(frames) == [kept["text"]]
        assert [f["id"] for f in frames if f["type"] == "deleted"] == [seen["id"]]
        late = await WsClient.open(two.http_port)
        session = reader.welcome["session"]
        await reader.close()
        await late.request({"type": "resume", "session": session, "last": {"lobby": 0}}, "resumed")
        assert "I regret this" not in texts(late.backlog)


async def test_a_moderator_on_one_node_deletes_a_message_from_the_other(
    tmp_path: Path, url: str
) -> None:
    async with two_nodes(tmp_path, url) as (one, two):  # staff tokens: test_matching's
        troll = await WsClient.open(one.http_port)
        watcher = await staff_ws(one.http_port, "mod-1")
        mod = await staff_ws(two.http_port, "mod-1")
        message = await troll.request({"type": "say", "text": "cruel words"}, "message")
        await mod.expect("message", id=message["id"])
        ask = {"type": "delete", "room": "lobby", "id": message["id"]}
        reply = await mod.request(ask, "deleted")
        assert reply["moderated"] is True
        assert (await troll.expect("deleted", id=message["id"]))["moderated"] is True
        noted = await expect_kind(watcher, "deleted")
        assert noted["name"] == troll.name and "cruel" not in noted["text"]


async def test_away_and_back_are_seen_from_the_other_node(tmp_path: Path, url: str) -> None:
    async with two_nodes(tmp_path, url) as (one, two):
        x = await WsClient.open(one.http_port)
        y, tcp = await WsClient.open(two.http_port), await TextClient.open(two.tcp_port)
        await cut(x)
        away = await y.expect("presence", event="away", uid=x.uid)
        assert (away["count"], away["away"]) == (3, 1)
        await tcp.expect(f"-- {x.name} is away")
        who = await y.request({"type": "who", "room": "lobby"}, "who")
        assert [m["uid"] for m in who["members"] if m.get("away")] == [x.uid]
        await resume(two.http_port, x.welcome["session"], {"lobby": 0})  # back on the other
        back = await y.expect("presence", event="back", uid=x.uid)
        assert back["count"] == 3 and "away" not in back
        await tcp.expect(f"-- {x.name} is back")
        who = await y.request({"type": "who", "room": "lobby"}, "who")
        assert [m["uid"] for m in who["members"]].count(x.uid) == 1
        assert not any(m.get("away") for m in who["members"])


async def test_typing_crosses_nodes_in_a_private_chat_only(tmp_path: Path, url: str) -> None:
    async with two_nodes(tmp_path, url) as (one, two):
        lis = await listener(two)
        ask = await seeker(one, position=1)
        room = (await ask.expect("matched"))["room"]
        await lis.expect("matched")
        bystander = await WsClient.open(two.http_port)
        await ask.send({"type": "typing", "room": room})
        typing = await lis.expect("typing")
        assert (typing["room"], typing["uid"], typing["name"]) == (room, ask.uid, ask.name)
        refused = await ask.request({"type": "typing", "room": "lobby"}, "error")
        assert refused["code"] == "bad_request"
        await say(ask, room, "barrier")
        await lis.expect("message", room=room)
        await nothing_more(bystander, "typing")
        await nothing_more(lis, "typing")


async def test_ignoring_someone_on_another_node_works_by_uid_and_by_name(
    tmp_path: Path, url: str
) -> None:
    """Someone bothering you may be held by another node: the page's ignore (by uid) and a
    netcat user's `/ignore Name` find them there, and their words stop reaching you."""
    async with two_nodes(tmp_path, url) as (one, two):
        page, tcp = await WsClient.open(one.http_port), await TextClient.open(one.tcp_port)
        noisy, other = await WsClient.open(two.http_port), await WsClient.open(two.http_port)
        first = await noisy.request({"type": "say", "text": "first"}, "message")
        await page.expect("message", id=first["id"])
        await tcp.expect(lambda line: line.endswith("first"))
        ignored = await page.request({"type": "ignore", "uid": noisy.uid}, "notice")
        assert ignored["text"] == f"you will no longer see messages from {noisy.name}"
        await tcp.send(f"/ignore {noisy.name}")
        await tcp.expect(f"-- you will no longer see messages from {noisy.name}")
        await noisy.request({"type": "say", "text": "second"}, "message")
        # A later message in the same room: whatever "second" was going to reach came first.
        await other.request({"type": "say", "text": "after it"}, "message")
        await page.expect("message", text="after it")
        assert texts(page.backlog) == []
        heard = [await tcp.line()]
        while not heard[-1].endswith("after it"):
            heard.append(await tcp.line())
        assert not [line for line in heard if line.endswith("second")]
