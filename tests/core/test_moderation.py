"""Moderation, black-box over real sockets: each action, its effect on both sides, both
interfaces (CONTRACT §6, §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatsupport import ChatServer

from ..helpers import TextClient, WsClient, start_server
from ..mod_helpers import (
    LISTENER_TOKEN,
    expect_kind,
    staff_tcp,
    staff_ws,
    tcp_sync,
    texts,
    write_tokens,
    ws_from,
    ws_sync,
)


@pytest.fixture
def server(staff_server: ChatServer) -> ChatServer:
    """Every test here runs with the staff tokens."""
    return staff_server


# ---- kick ----------------------------------------------------------------------------------
async def test_kick_over_websocket_ends_the_session_for_good(server: ChatServer) -> None:
    mod = await staff_ws(server.http_port)
    target, other = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    reply = await mod.request({"type": "kick", "uid": target.uid, "reason": "spam"}, "notice")
    assert reply["kind"] == "kick" and reply["name"] == target.name
    told = await expect_kind(target, "kicked")
    assert "spam" in told["text"]
    assert (await target.expect("bye"))["reason"] == "kicked"
    gone = await other.expect("presence", event="leave", uid=target.uid)
    assert gone["room"] == "lobby"
    # Not resumable: the old token gives a fresh person, not the kicked one.
    again = await WsClient.open(server.http_port)
    resumed = await again.request(
        {"type": "resume", "session": target.welcome["session"], "last": {}}, "resumed"
    )
    assert resumed["complete"] is False and again.uid != target.uid
    assert target.uid not in server.peers


async def test_kick_on_the_text_interface(server: ChatServer) -> None:
    mod = await staff_tcp(server.tcp_port)
    target = await TextClient.open(server.tcp_port)
    await mod.send(f"/kick {target.name}")
    assert await mod.expect(lambda s: "disconnected" in s) == f"-- {target.name} was disconnected"
    await target.expect("-- a moderator disconnected you")
    await target.expect("*** goodbye (kicked)")
    assert await target.closed()


async def test_only_moderators_moderate(server: ChatServer) -> None:
    ws, tcp = await WsClient.open(server.http_port), await TextClient.open(server.tcp_port)
    listener = await staff_ws(server.http_port, LISTENER_TOKEN)
    for client in (ws, listener):
        for frame in (
            {"type": "kick", "uid": tcp.name},
            {"type": "mute", "name": tcp.name, "minutes": 5},
            {"type": "ban", "name": tcp.name, "minutes": 5},
            {"type": "shadow", "name": tcp.name, "minutes": 5},
            {"type": "announce", "text": "hi all"},
            {"type": "slow", "room": "lobby", "seconds": 5},
            {"type": "lock", "room": "lobby"},
            {"type": "reports"},
        ):
            assert (await client.request(frame, "error"))["code"] == "forbidden", frame
    await tcp.send(f"/kick {ws.name}")
    assert await tcp.expect(lambda s: s.startswith("!!")) == "!! /kick is for mods"
    assert ws.uid in server.peers


async def test_moderators_cannot_act_on_each_other_or_themselves(
    server: ChatServer,
) -> None:
    mod, other = await staff_ws(server.http_port), await staff_ws(server.http_port)
    refused = await mod.request({"type": "ban", "uid": other.uid, "minutes": 5}, "error")
    assert refused["code"] == "forbidden"
    refused = await mod.request({"type": "kick", "uid": mod.uid}, "error")
    assert refused["code"] == "bad_request"
    missing = await mod.request({"type": "mute", "name": "Nobody Here", "minutes": 5}, "error")
    assert missing["code"] == "bad_request" and "Nobody Here" in missing["message"]
    wrong = await mod.request({"type": "mute", "uid": other.uid, "minutes": -3}, "error")
    assert wrong["code"] in ("bad_request", "forbidden")


# ---- mute ----------------------------------------------------------------------------------
async def test_mute_on_both_interfaces_then_unban_lifts_it(server: ChatServer) -> None:
    mod = await staff_tcp(server.tcp_port)
    ws, tcp = await WsClient.open(server.http_port), await TextClient.open(server.tcp_port)
    observer = await WsClient.open(server.http_port)
    await mod.send(f"/mute {ws.name} 10")
    assert await mod.expect(lambda s: "muted" in s) == f"-- {ws.name} is muted for 10 minutes"
    assert "muted you for 10 minutes" in (await expect_kind(ws, "mute"))["text"]
    await mod.send(f"/mute {tcp.name} 0.5")
    await tcp.expect("-- a moderator muted you for 30 seconds: you can read but not write")

    refused = await ws.request({"type": "say", "room": "lobby", "text": "let me talk"}, "error")
    assert refused["code"] == "muted" and "more" in refused["message"]
    assert (await ws.request({"type": "me", "text": "waves"}, "error"))["code"] == "muted"
    await tcp.send("me too")
    assert (await tcp.expect(lambda s: s.startswith("!!"))).startswith("!! you are muted for")
    assert "let me talk" not in texts(await ws_sync(observer))

    await mod.send(f"/unban {ws.name}")
    assert await mod.expect(lambda s: "lifted" in s) == f"-- lifted for {ws.name}: mute"
    await expect_kind(ws, "unmute")
    await ws.request({"type": "say", "room": "lobby", "text": "free again"}, "message")
    await observer.expect("message", text="free again")


# ---- ban -----------------------------------------------------------------------------------
async def test_an_address_ban_refuses_reconnects_from_the_network_on_both_interfaces(
    server: ChatServer,
) -> None:
    mod = await staff_ws(server.http_port)
    target = await TextClient.open(server.tcp_port, local_addr="127.0.0.5")
    frame = {"type": "ban", "name": target.name, "minutes": 30, "scope": "address"}
    reply = await mod.request(frame, "notice")
    assert reply["kind"] == "ban"
    assert reply["text"] == f"{target.name} is banned for 30 minutes, their network for 30 minutes"
    told = await target.expect(lambda s: s.startswith("-- a moderator banned you"))
    assert "for 30 minutes, and everyone on your network for 30 minutes" in told
    assert "help lines stay open to you" in told
    assert (await target.line()).startswith("-- ")  # the help lines follow, one a line
    await target.expect("*** goodbye (banned)")
    assert await target.closed()

    again = await TextClient.open(server.tcp_port, local_addr="127.0.0.5", greet=False)
    why = await again.line()
    assert why.startswith("!! a moderator closed the chat to your network for 30 minutes")
    assert (await again.line()).startswith("-- ")  # where to find help meanwhile
    assert await again.closed()
    ws = await ws_from(server.http_port, "127.0.0.5", welcome=False)
    refused = await ws.recv()
    assert refused["type"] == "error" and refused["code"] == "banned"
    assert refused["resources"] and all(line["name"] for line in refused["resources"])
    assert (await ws.recv())["type"] == "bye"
    # Another address is unaffected.
    await TextClient.open(server.tcp_port, local_addr="127.0.0.6")

    lifted = await mod.request({"type": "unban", "name": target.name}, "notice")
    assert lifted["text"] == f"lifted for {target.name}: ban"
    await TextClient.open(server.tcp_port, local_addr="127.0.0.5")


async def test_a_person_ban_spares_the_network_and_an_address_ban_may_be_capped(
    tmp_path: Path,
) -> None:
    server = await start_server(tokens_file=write_tokens(tmp_path), address_ban_max=3600.0)
    try:
        mod = await staff_tcp(server.tcp_port)
        first = await TextClient.open(server.tcp_port, local_addr="127.0.0.8")
        await mod.send(f"/ban {first.name} 600 person")  # the network stays open
        line = await mod.expect(lambda s: "banned" in s)
        assert line == f"-- {first.name} is banned for 10 hours"
        neighbour = await TextClient.open(server.tcp_port, local_addr="127.0.0.8")
        await mod.send(f"/ban {neighbour.name} 600")  # the default: the address too
        line = await mod.expect(lambda s: "banned" in s)
        assert line == f"-- {neighbour.name} is banned for 10 hours, their network for 60 minutes"
    finally:
        await server.stop()


async def test_ban_over_websocket_by_uid_refuses_the_client_not_its_network(
    server: ChatServer,
) -> None:
    mod = await staff_tcp(server.tcp_port)
    tab = "/ws?client=tab-4f0c2a9e7d1b5c3a"
    target = await WsClient.open(server.http_port, path=tab, local_addr="127.0.0.7")
    mod_ws = await staff_ws(server.http_port)
    ban = {"type": "ban", "uid": target.uid, "minutes": 1, "scope": "person"}
    await mod_ws.request(ban, "notice")
    told = await expect_kind(target, "banned")
    assert "banned you from the chat for 1 minute" in told["text"] and told["resources"]
    assert (await target.expect("bye"))["reason"] == "banned"
    retry = await WsClient.open(server.http_port, path=tab, welcome=False, local_addr="127.0.0.7")
    refused = await retry.recv()
    assert refused["code"] == "banned"
    assert refused["message"].startswith("a moderator banned you from the chat; ")
    assert " to go. Help lines are open to you meanwhile" in refused["message"]
    assert refused["resources"]
    assert (await retry.recv()) == {"type": "bye", "reason": "banned"}
    # the same network, another person (another tab, another client id): welcome
    await ws_from(server.http_port, "127.0.0.7")
    await WsClient.open(
        server.http_port, path="/ws?client=tab-other-5d2e8f1a", local_addr="127.0.0.7"
    )
    await mod.send(f"/unban {target.name}")
    await mod.expect(f"-- lifted for {target.name}: ban")
    await WsClient.open(server.http_port, path=tab, local_addr="127.0.0.7")


# ---- announce ------------------------------------------------------------------------------
async def test_announce_reaches_every_room_on_both_interfaces(server: ChatServer) -> None:
    mod = await staff_ws(server.http_port)
    elsewhere = await WsClient.open(server.http_port)
    await elsewhere.request({"type": "join", "room": "evening"}, "joined")
    tcp = await TextClient.open(server.tcp_port)
    reply = await mod.request({"type": "announce", "text": "maintenance at noon"}, "notice")
    assert reply["kind"] == "announced"
    for room in ("lobby", "evening"):
        got = await elsewhere.expect("message", room=room, text="maintenance at noon")
        assert got["kind"] == "announce" and got["role"] == "mod"
    assert await tcp.expect(lambda s: "maintenance" in s) == "*** maintenance at noon"


# ---- slow mode -----------------------------------------------------------------------------
async def test_slow_mode_limits_each_person_but_not_moderators(server: ChatServer) -> None:
    mod = await staff_ws(server.http_port)
    ws, tcp = await WsClient.open(server.http_port), await TextClient.open(server.tcp_port)
    reply = await mod.request({"type": "say", "text": "/slow lobby 600"}, "notice")
    assert reply["kind"] == "slow" and "10 minutes" in reply["text"]
    assert "slow mode" in (await expect_kind(ws, "slow"))["text"]
    await tcp.expect(lambda s: "slow mode" in s)

    await ws.request({"type": "say", "room": "lobby", "text": "first"}, "message")
    again = await ws.request({"type": "say", "room": "lobby", "text": "second"}, "error")
    assert again["code"] == "rate_limited" and "slow mode" in again["message"]
    await tcp.send("one")
    await tcp.send("two")
    assert "slow mode" in await tcp.expect(lambda s: s.startswith("!!"))
    for n in range(3):
        await mod.request({"type": "say", "room": "lobby", "text": f"mod {n}"}, "message")

    await mod.request({"type": "slow", "room": "lobby", "seconds": 0}, "notice")
    await ws.request({"type": "say", "room": "lobby", "text": "third"}, "message")
    bad = await mod.request({"type": "slow", "room": "Not A Room!", "seconds": 5}, "error")
    assert bad["code"] == "bad_request"


# ---- lock ----------------------------------------------------------------------------------
async def test_lock_keeps_newcomers_out_and_silent(server: ChatServer) -> None:
    mod = await staff_tcp(server.tcp_port)
    inside = await WsClient.open(server.http_port)
    await inside.request({"type": "join", "room": "raid"}, "joined")
    outside, text_outside = (
        await WsClient.open(server.http_port),
        await TextClient.open(server.tcp_port),
    )
    await mod.send("/lock raid")
    await mod.expect(lambda s: "locked" in s)
    assert "locked" in (await expect_kind(inside, "lock"))["text"]

    refused = await outside.request({"type": "join", "room": "raid"}, "error")
    assert refused["code"] == "forbidden" and "locked" in refused["message"]
    await text_outside.send("/join raid")
    assert "locked" in await text_outside.expect(lambda s: s.startswith("!!"))
    await inside.request({"type": "say", "room": "raid", "text": "still here"}, "message")
    await mod.send("/join raid")  # moderators go anywhere
    await mod.expect(lambda s: s.startswith("-- you are in #raid"))

    await mod.send("/unlock raid")
    await mod.expect(lambda s: "open again" in s)
    await outside.request({"type": "join", "room": "raid"}, "joined")
    await outside.request({"type": "say", "room": "raid", "text": "hello"}, "message")


# ---- shadow-mute ---------------------------------------------------------------------------
async def test_shadow_mute_reaches_only_the_author_who_cannot_tell(server: ChatServer) -> None:
    mod = await staff_ws(server.http_port)
    troll = await WsClient.open(server.http_port)
    other, tcp = await WsClient.open(server.http_port), await TextClient.open(server.tcp_port)
    reply = await mod.request({"type": "say", "text": f"/shadow {troll.name} 30"}, "notice")
    assert reply["kind"] == "shadow"

    own = await troll.request({"type": "say", "room": "lobby", "text": "you all stink"}, "message")
    assert own["text"] == "you all stink" and isinstance(own["id"], int)
    await troll.request({"type": "me", "room": "lobby", "text": "laughs"}, "message")
    await other.request({"type": "say", "room": "lobby", "text": "sync"}, "message")
    # The troll saw nothing unusual: its own messages, then the next one, ids in order.
    frames = await ws_sync(troll)
    frames = [f for f in frames if f["type"] != "presence"]
    assert [f["type"] for f in frames] == ["message"] and frames[0]["text"] == "sync"
    assert frames[0]["id"] > own["id"]
    # Nobody else saw them, on either interface, live or on resume.
    assert texts(await ws_sync(other)) == []
    assert not any("stink" in line or "laughs" in line for line in await tcp_sync(tcp))
    late = await WsClient.open(server.http_port)
    session = other.welcome["session"]
    await other.close()
    replay = await late.request(
        {"type": "resume", "session": session, "last": {"lobby": 0}}, "resumed"
    )
    assert replay["complete"] is True
    assert "you all stink" not in texts(late.backlog)
    assert "sync" in texts(late.backlog)

    await mod.request({"type": "unban", "uid": troll.uid}, "notice")
    await troll.request({"type": "say", "room": "lobby", "text": "seen again"}, "message")
    await late.expect("message", text="seen again")


# ---- ignore (uids on WebSocket, names on text) ---------------------------------------------
async def test_ignore_by_uid_and_by_name(server: ChatServer) -> None:
    noisy = await WsClient.open(server.http_port)
    ws, tcp = await WsClient.open(server.http_port), await TextClient.open(server.tcp_port)
    await ws.request({"type": "ignore", "uid": noisy.uid}, "notice")
    await tcp.send(f"/ignore {noisy.name}")
    await tcp.expect(f"-- you will no longer see messages from {noisy.name}")
    await noisy.request({"type": "say", "room": "lobby", "text": "hear me"}, "message")
    assert "hear me" not in texts(await ws_sync(ws))
    assert not any("hear me" in line for line in await tcp_sync(tcp))
    await ws.request({"type": "unignore", "uid": noisy.uid}, "notice")
    await noisy.request({"type": "say", "room": "lobby", "text": "and now"}, "message")
    await ws.expect("message", text="and now")


# ---- names ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["Аdmin", "m0derator", "M O D", "Sуstem", "ChatSupport", "admin\u200b", "𝐦𝐨𝐝"],
)
async def test_staff_look_alike_names_are_refused(server: ChatServer, name: str) -> None:
    ws = await WsClient.open(server.http_port)
    refused = await ws.request({"type": "nick", "name": name}, "error")
    assert refused["code"] == "invalid_name", (name, refused)


async def test_look_alikes_of_a_person_are_taken_on_both_interfaces(server: ChatServer) -> None:
    ws, tcp = await WsClient.open(server.http_port), await TextClient.open(server.tcp_port)
    await ws.request({"type": "nick", "name": "Willow"}, "notice")
    for fake in ("WILLOW", "Wi11ow", "Wіllow"):  # the last has a Cyrillic і
        await tcp.send(f"/nick {fake}")
        line = await tcp.expect(lambda s: s.startswith("!!"))
        assert "taken" in line or "alphabets" in line, (fake, line)
    refused = await WsClient.open(server.http_port)
    reply = await refused.request({"type": "nick", "name": "wiIlow"}, "error")
    assert reply["code"] in ("name_taken", "invalid_name")


# ---- reports -------------------------------------------------------------------------------
async def test_report_by_message_id_reaches_only_moderators_with_evidence(
    server: ChatServer,
) -> None:
    mod_ws, mod_tcp = await staff_ws(server.http_port), await staff_tcp(server.tcp_port)
    listener = await staff_ws(server.http_port, LISTENER_TOKEN)
    troll, reporter = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    for n in range(7):
        await reporter.request({"type": "say", "room": "lobby", "text": f"before {n}"}, "message")
    bad = await troll.request({"type": "say", "room": "lobby", "text": "go away loser"}, "message")

    thanks = await reporter.request(
        {"type": "report", "id": bad["id"], "room": "lobby", "reason": "insults"}, "notice"
    )
    assert thanks["kind"] == "report"
    report = await mod_ws.expect("report")
    assert report["uid"] == troll.uid and report["name"] == troll.name
    assert report["room"] == "lobby" and report["reason"] == "insults"
    assert [m["text"] for m in report["evidence"]] == [
        *(f"before {n}" for n in range(2, 7)),
        "go away loser",
    ]
    alias = report["reporter"]
    assert reporter.uid not in alias and reporter.name not in alias
    lines = [await mod_tcp.expect(lambda s: s.startswith("*** [report"))]
    lines += [await mod_tcp.line() for _ in range(6)]
    assert lines[0].endswith(f"{troll.name} in #lobby: insults")
    assert lines[-1] == f"***  > <{troll.name}> go away loser"
    assert lines[1] == f"***    <{reporter.name}> before 2"

    # Nobody else hears of it: not the reported person, not listeners.
    for client in (troll, listener):
        assert not [f for f in await ws_sync(client) if f["type"] == "report"]
    # Listed for moderators, with the same alias.
    await mod_ws.send({"type": "reports", "ref": "list"})
    listed = await mod_ws.expect("report", ref="list")
    assert listed["id"] == report["id"] and listed["reporter"] == alias
    summary = await mod_ws.expect("notice", ref="list")
    assert summary["text"].startswith("1 report(s)")


async def test_report_by_name_on_the_text_interface(server: ChatServer) -> None:
    mod = await staff_ws(server.http_port)
    reporter = await TextClient.open(server.tcp_port)
    two_words, one_word = (
        await WsClient.open(server.http_port),
        await TextClient.open(server.tcp_port),
    )
    await one_word.send("/nick Bob")
    await one_word.expect("-- you are now Bob")
    await two_words.request({"type": "say", "room": "lobby", "text": "first thing"}, "message")
    await two_words.request({"type": "say", "room": "lobby", "text": "latest thing"}, "message")
    await one_word.send("hello from bob")
    await reporter.expect("<Bob> hello from bob")

    await reporter.send(f"/report {two_words.name} keeps being rude")
    await reporter.expect(lambda s: s.startswith("-- thank you"))
    report = await mod.expect("report")
    assert report["uid"] == two_words.uid and report["reason"] == "keeps being rude"
    assert report["evidence"][-1]["text"] == "latest thing"
    await reporter.send("/report Bob spam")
    await reporter.expect(lambda s: s.startswith("-- thank you"))
    report = await mod.expect("report")
    assert report["name"] == "Bob" and report["reason"] == "spam"
    assert report["evidence"][-1]["text"] == "hello from bob"

    await reporter.send("/report Nobody Here at all")
    assert "no recent message" in await reporter.expect(lambda s: s.startswith("!!"))


async def test_report_refusals(server: ChatServer) -> None:
    ws, other = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    own = await ws.request({"type": "say", "room": "lobby", "text": "mine"}, "message")
    theirs = await other.request({"type": "say", "room": "lobby", "text": "theirs"}, "message")
    refused = await ws.request({"type": "report", "id": own["id"], "reason": "x"}, "error")
    assert refused["code"] == "bad_request" and "yourself" in refused["message"]
    refused = await ws.request({"type": "report", "id": 999, "reason": "x"}, "error")
    assert refused["code"] == "bad_request"
    refused = await ws.request({"type": "report", "id": 1, "room": "elsewhere"}, "error")
    assert refused["code"] == "not_in_room"
    await ws.request({"type": "report", "id": theirs["id"], "reason": "x"}, "notice")
    again = await ws.request({"type": "report", "id": theirs["id"], "reason": "x"}, "error")
    assert "already" in again["message"]
    by_uid = await ws.request({"type": "report", "uid": other.uid, "reason": "again"}, "error")
    assert "already" in by_uid["message"]  # the same message, found through the uid
    wrong = await ws.request({"type": "report", "id": "one"}, "error")
    assert wrong["code"] == "bad_request"
