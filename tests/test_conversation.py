"""Deleting a message, honest presence (away/back) and typing, over real sockets on one
node and both interfaces (tests/test_cluster_conversation.py does it across nodes)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chatsupport import ChatServer

from .helpers import TextClient, WsClient
from .mod_helpers import expect_kind, staff_ws, tcp_sync, texts, ws_sync
from .test_resume import cut, resume


@pytest.fixture
def server(staff_server: ChatServer) -> ChatServer:
    """Every test here runs with the staff tokens."""
    return staff_server


async def say(client: WsClient, text: str, room: str = "lobby") -> dict[str, Any]:
    return await client.request({"type": "say", "room": room, "text": text}, "message")


# ---- delete --------------------------------------------------------------------------------
async def test_deleting_your_own_message_removes_it_everywhere(server: ChatServer) -> None:
    author, reader = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    tcp = await TextClient.open(server.tcp_port)
    said = await say(author, "I said too much")
    await reader.expect("message", id=said["id"])
    reply = await author.request({"type": "delete", "room": "lobby", "id": said["id"]}, "deleted")
    assert reply == {
        "type": "deleted",
        "room": "lobby",
        "id": said["id"],
        "uid": author.uid,
        "name": author.name,
        "ref": reply["ref"],
    }
    gone = await reader.expect("deleted", id=said["id"])
    assert gone["uid"] == author.uid and "text" not in gone
    assert f"-- a message from {author.name} was deleted" in await tcp_sync(tcp)
    # A second delete finds nothing, and nobody hears of it again.
    again = await author.request({"type": "delete", "room": "lobby", "id": said["id"]}, "error")
    assert again["code"] == "bad_request"
    assert "deleted" not in [f["type"] for f in await ws_sync(reader)]


async def test_only_your_own_message_unless_you_moderate(server: ChatServer) -> None:
    author, other = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    said = await say(author, "mine")
    refused = await other.request({"type": "delete", "room": "lobby", "id": said["id"]}, "error")
    assert refused["code"] == "forbidden"
    unknown = await other.request({"type": "delete", "room": "lobby", "id": 999}, "error")
    assert unknown["code"] == "bad_request"
    elsewhere = await other.request({"type": "delete", "room": "help", "id": 1}, "error")
    assert elsewhere["code"] == "not_in_room"
    assert "deleted" not in [f["type"] for f in await ws_sync(author)]


async def test_a_moderator_deletes_any_message_and_the_words_are_kept_nowhere(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mod, watcher = await staff_ws(server.http_port), await staff_ws(server.http_port)
    troll, reader = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    said = await say(troll, "something cruel 7f3a")
    reply = await mod.request({"type": "delete", "room": "lobby", "id": said["id"]}, "deleted")
    assert reply["moderated"] is True and reply["uid"] == troll.uid
    assert (await reader.expect("deleted", id=said["id"]))["moderated"] is True
    assert (await troll.expect("deleted", id=said["id"]))["moderated"] is True
    noted = await expect_kind(watcher, "deleted")
    assert noted["text"] == f"{mod.name} deleted a message by {troll.name} in #lobby"
    assert "7f3a" not in caplog.text and "cruel" not in caplog.text
    # Nothing of it replays, to anyone.
    late = await WsClient.open(server.http_port)
    session = reader.welcome["session"]
    await reader.close()
    await late.request({"type": "resume", "session": session, "last": {"lobby": 0}}, "resumed")
    assert "something cruel 7f3a" not in texts(late.backlog)


async def test_slash_delete_takes_back_your_last_message_here(server: ChatServer) -> None:
    tcp, other = await TextClient.open(server.tcp_port), await TextClient.open(server.tcp_port)
    ws = await WsClient.open(server.http_port)
    await tcp.send("first thing")
    await tcp.send("second thing")
    second = await ws.expect("message", text="second thing")
    await other.expect(f"<{tcp.name}> second thing")
    await tcp.send("/delete")
    await tcp.expect(f"-- a message from {tcp.name} was deleted")
    await other.expect(f"-- a message from {tcp.name} was deleted")
    assert (await ws.expect("deleted"))["id"] == second["id"]
    await tcp.send("/delete")
    await tcp.send("/delete")  # "first thing" goes too; then nothing of theirs is left
    await tcp.expect("!! you have no message in #lobby to delete")
    await tcp.send("/delete now")
    assert "usage: /delete" in await tcp.expect(lambda s: s.startswith("!!"))


async def test_resume_after_a_delete_does_not_replay_it_and_says_it_went(
    server: ChatServer,
) -> None:
    author, away = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    seen = await say(author, "seen, then deleted")
    await away.expect("message", id=seen["id"])
    await cut(away)
    unseen = await say(author, "never seen, deleted")
    kept = await say(author, "kept")
    for message in (seen, unseen):
        await author.request({"type": "delete", "room": "lobby", "id": message["id"]}, "deleted")
    _, frames = await resume(server.http_port, away.welcome["session"], {"lobby": seen["id"]})
    assert texts(frames) == ["kept"]
    assert [f["id"] for f in frames if f["type"] == "deleted"] == [seen["id"]]
    assert frames[-1]["type"] == "resumed"
    # A deleted message still counts as kept: nothing is missing from the window.
    assert frames[-1]["complete"] is True and frames[-1]["missed"] == 1
    assert kept["id"] == unseen["id"] + 1


async def test_a_shadow_muted_message_is_deleted_without_a_word_to_the_others(
    server: ChatServer,
) -> None:
    mod = await staff_ws(server.http_port)
    troll, other = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    await mod.request({"type": "shadow", "uid": troll.uid, "minutes": 5}, "notice")
    said = await say(troll, "nobody sees this")
    await troll.request({"type": "delete", "room": "lobby", "id": said["id"]}, "deleted")
    assert [f for f in await ws_sync(other) if f["type"] in ("message", "deleted")] == []
