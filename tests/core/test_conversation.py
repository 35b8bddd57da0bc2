"""Deleting a message, honest presence (away/back) and typing, over real sockets on one
node and both interfaces (tests/broker/test_cluster_conversation.py does it across nodes)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from chatsupport import ChatServer
from chatsupport.client.terminal import Client

from ..helpers import Lines, TextClient, WsClient, start_server
from ..mod_helpers import expect_kind, staff_ws, tcp_sync, texts, ws_sync
from .test_matching import listener, nothing_more, say, seeker, serving, tcp_listener
from .test_resume import cut, resume


@pytest.fixture
def server(staff_server: ChatServer) -> ChatServer:
    """Every test here runs with the staff tokens."""
    return staff_server


async def said(client: WsClient, text: str, room: str = "lobby") -> dict[str, Any]:
    return await client.request({"type": "say", "room": room, "text": text}, "message")


# ---- delete --------------------------------------------------------------------------------
async def test_deleting_your_own_message_removes_it_everywhere(server: ChatServer) -> None:
    author, reader = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    tcp = await TextClient.open(server.tcp_port)
    message = await said(author, "I said too much")
    await reader.expect("message", id=message["id"])
    reply = await author.request(
        {"type": "delete", "room": "lobby", "id": message["id"]}, "deleted"
    )
    assert reply == {
        "type": "deleted",
        "room": "lobby",
        "id": message["id"],
        "uid": author.uid,
        "name": author.name,
        "ref": reply["ref"],
    }
    gone = await reader.expect("deleted", id=message["id"])
    assert gone["uid"] == author.uid and "text" not in gone
    assert f"-- a message from {author.name} was deleted" in await tcp_sync(tcp)
    # A second delete finds nothing, and nobody hears of it again.
    again = await author.request({"type": "delete", "room": "lobby", "id": message["id"]}, "error")
    assert again["code"] == "bad_request"
    assert "deleted" not in [f["type"] for f in await ws_sync(reader)]


async def test_only_your_own_message_unless_you_moderate(server: ChatServer) -> None:
    author, other = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    message = await said(author, "mine")
    refused = await other.request({"type": "delete", "room": "lobby", "id": message["id"]}, "error")
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
    message = await said(troll, "something cruel 7f3a")
    reply = await mod.request({"type": "delete", "room": "lobby", "id": message["id"]}, "deleted")
    assert reply["moderated"] is True and reply["uid"] == troll.uid
    assert (await reader.expect("deleted", id=message["id"]))["moderated"] is True
    assert (await troll.expect("deleted", id=message["id"]))["moderated"] is True
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
    seen = await said(author, "seen, then deleted")
    await away.expect("message", id=seen["id"])
    await cut(away)
    unseen = await said(author, "never seen, deleted")
    kept = await said(author, "kept")
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
    message = await said(troll, "nobody sees this")
    await troll.request({"type": "delete", "room": "lobby", "id": message["id"]}, "deleted")
    assert [f for f in await ws_sync(other) if f["type"] in ("message", "deleted")] == []


# ---- honest presence -----------------------------------------------------------------------
async def test_a_dropped_connection_is_away_until_it_resumes(server: ChatServer) -> None:
    a, b = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    tcp = await TextClient.open(server.tcp_port)
    await cut(a)
    away = await b.expect("presence", event="away")
    assert (away["uid"], away["name"], away["count"], away["away"]) == (a.uid, a.name, 3, 1)
    await tcp.expect(f"-- {a.name} is away")
    who = await b.request({"type": "who", "room": "lobby"}, "who")
    assert {m["uid"]: m.get("away", False) for m in who["members"]} == {
        a.uid: True,
        b.uid: False,
        next(m["uid"] for m in who["members"] if m["name"] == tcp.name): False,
    }
    # A newcomer is told the same, in numbers and by name.
    newcomer = await WsClient.open(server.http_port, welcome=False)
    await newcomer.expect("welcome")
    joined = await newcomer.expect("joined")
    assert (joined["count"], joined["away"]) == (4, 1)
    late = await TextClient.open(server.tcp_port, greet=False)
    await late.line()  # welcome
    here = await late.line()
    assert here.startswith("-- you are in #lobby (4 here, 1 away): ")
    assert f"{a.name} (away)" in here
    # Back: the others are told, the counts are whole again.
    await resume(server.http_port, a.welcome["session"], {"lobby": 0})
    back = await b.expect("presence", event="back")
    assert (back["uid"], back["count"]) == (a.uid, 5) and "away" not in back
    await tcp.expect(f"-- {a.name} is back")
    who = await b.request({"type": "who", "room": "lobby"}, "who")
    assert not any(m.get("away") for m in who["members"])


async def test_away_ends_in_leave_when_the_grace_is_over() -> None:
    server = await start_server(resume_grace=0.1)
    try:
        a, b = [await WsClient.open(server.http_port) for _ in range(2)]
        await cut(a)
        assert (await b.expect("presence", event="away"))["uid"] == a.uid
        left = await b.expect("presence", event="leave", timeout=10)  # housekeeping runs ~1/s
        assert (left["uid"], left["count"]) == (a.uid, 1) and "away" not in left
    finally:
        await server.stop()


async def test_away_and_back_are_not_announced_in_a_crowd() -> None:
    server = await start_server(presence_limit=2)
    try:
        a, b, c = [await WsClient.open(server.http_port) for _ in range(3)]
        tcp = await TextClient.open(server.tcp_port)
        await cut(a)
        # Not announced, but listed: who shows them away.
        for _ in range(100):  # the server notices the cut in its own time
            who = await b.request({"type": "who", "room": "lobby"}, "who")
            if any(m.get("away") for m in who["members"]):
                break
            await asyncio.sleep(0.05)
        assert [m["uid"] for m in who["members"] if m.get("away")] == [a.uid]
        assert not [f for f in await ws_sync(b) if f["type"] == "presence"]
        assert not [line for line in await tcp_sync(tcp) if "is away" in line]
        await resume(server.http_port, a.welcome["session"], {"lobby": 0})
        await c.request({"type": "say", "text": "barrier"}, "message")
        await b.expect("message", text="barrier")
        assert not [f for f in await ws_sync(b) if f["type"] == "presence"]
    finally:
        await server.stop()


NEW_NAMES = ("Still Pond", "Kind Heron", "Calm Harbour", "Soft Meadow")


async def test_after_nick_the_old_name_is_gone_from_every_list(server: ChatServer) -> None:
    ws, tcp = await WsClient.open(server.http_port), await TextClient.open(server.tcp_port)
    old_ws, old_tcp = ws.name, tcp.name
    # New names neither of them was given (a random name could be one of these).
    new_ws, new_tcp = [n for n in NEW_NAMES if n not in (old_ws, old_tcp)][:2]
    await ws.request({"type": "nick", "name": new_ws}, "notice")
    await tcp.send(f"/nick {new_tcp}")
    await tcp.expect(f"-- you are now {new_tcp}")
    who = await ws.request({"type": "who", "room": "lobby"}, "who")
    names = {m["name"] for m in who["members"]}
    assert {new_ws, new_tcp} <= names and not {old_ws, old_tcp} & names
    await tcp.send("/who")
    listed = await tcp.expect(lambda s: s.startswith("-- in #lobby"))
    assert new_ws in listed and old_ws not in listed and old_tcp not in listed
    newcomer = await WsClient.open(server.http_port, welcome=False)
    await newcomer.expect("welcome")
    joined = await newcomer.expect("joined")
    assert not {old_ws, old_tcp} & {m["name"] for m in joined["members"]}


# ---- typing --------------------------------------------------------------------------------
async def test_typing_reaches_the_other_person_in_a_private_chat_only(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        lis = await listener(server)
        seek = await seeker(server)
        room = (await seek.expect("matched"))["room"]
        await lis.expect("matched")
        other = await WsClient.open(server.http_port)  # in #lobby
        await seek.send({"type": "typing", "room": room})
        typing = await lis.expect("typing")
        assert typing == {"type": "typing", "room": room, "uid": seek.uid, "name": seek.name}
        await nothing_more(seek, "typing")  # not back to the one typing
        # Never in a group room: refused, and nobody there hears of it.
        refused = await seek.request({"type": "typing", "room": "lobby"}, "error")
        assert refused["code"] == "bad_request"
        await nothing_more(other, "typing")
        await nothing_more(lis, "typing", room="lobby")
        # It costs nothing from the message budget, but it is bounded (without flood strikes).
        for n in range(10):
            await lis.send({"type": "typing", "room": room, "ref": f"t{n}"})
        await lis.request({"type": "ping"}, "pong")
        codes = [f["code"] for f in lis.backlog if f["type"] == "error"]
        assert codes and set(codes) == {"rate_limited"}
        heard = [f for f in await ws_sync(seek) if f["type"] == "typing"]
        assert 1 <= len(heard) < 10
        await say(lis, room, "typing did not spend my budget")


async def test_typing_is_never_shown_on_the_text_interface(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        lis = await tcp_listener(server)
        seek = await seeker(server)
        room = (await seek.expect("matched"))["room"]
        await lis.expect(lambda s: s.startswith("-- you are now talking privately"))
        await seek.send({"type": "typing", "room": room})
        await say(seek, room, "hello")
        assert await lis.line() == f"<{seek.name}> hello"  # nothing before it


# ---- the terminal client ---------------------------------------------------------------------
def test_the_terminal_client_shows_deletions_and_away_but_not_typing() -> None:
    view = Lines()
    client = Client("ws://127.0.0.1:1/ws", view, interactive=False)
    frames = [
        {"type": "typing", "room": "dm-1", "uid": "u1", "name": "Kind Owl"},
        {"type": "deleted", "room": "lobby", "id": 3, "uid": "u1", "name": "Kind Owl"},
        {"type": "presence", "room": "lobby", "event": "away", "uid": "u1", "name": "Kind Owl",
         "count": 2, "away": 1},
    ]  # fmt: skip
    for frame in frames:
        client._receive(json.dumps(frame))
    assert view.lines == ["-- a message from Kind Owl was deleted", "-- Kind Owl is away"]
