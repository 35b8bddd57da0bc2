"""The WebSocket JSON interface, black-box over real sockets (CONTRACT §4, §5, §6)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import msgspec
import pytest

from chatsupport import ChatServer
from chatsupport.core import requests as rq
from chatsupport.transport.ws import HttpConnection

from ..helpers import WAIT, TextClient, WsClient, eventually, start_server
from ..wsraw import RawWs

MESSAGE_FIELDS = {"type", "id", "room", "uid", "name", "role", "kind", "text", "ts"}


async def test_welcome_is_the_first_frame(server: ChatServer) -> None:
    ws = await WsClient.open(server.http_port, welcome=False)
    welcome = await ws.recv()
    assert welcome["type"] == "welcome"
    assert set(welcome) == {"type", "session", "uid", "name", "room", "rooms", "limits"}
    assert welcome["room"] == "lobby" and welcome["rooms"] == ["lobby"]
    assert len(welcome["session"]) >= 32 and welcome["uid"] != welcome["session"]
    assert welcome["limits"]["max_text"] == 2000
    joined = await ws.recv()
    assert joined["type"] == "joined" and joined["room"] == "lobby" and joined["count"] == 1
    assert joined["members"] == [{"uid": welcome["uid"], "name": welcome["name"]}]


async def test_text_and_websocket_peers_talk_both_ways(server: ChatServer) -> None:
    tcp = await TextClient.open(server.tcp_port)
    ws = await WsClient.open(server.http_port)
    await tcp.expect(f"-- {ws.name} joined #lobby (2 here)")
    await tcp.send("hello from netcat")
    got = await ws.expect("message")
    assert set(got) == MESSAGE_FIELDS
    assert (got["room"], got["name"], got["kind"], got["role"]) == ("lobby", tcp.name, "say", None)
    assert got["text"] == "hello from netcat" and isinstance(got["id"], int)
    # The JSON sender gets its own message back (with its ref): one order for everyone.
    mine = await ws.request(
        {"type": "say", "room": "lobby", "text": "hello from the web"}, "message"
    )
    assert mine["id"] == got["id"] + 1 and mine["uid"] == ws.uid
    assert await tcp.expect(lambda s: "web" in s) == f"<{ws.name}> hello from the web"
    await ws.send({"type": "say", "room": "lobby", "text": "/me waves"})
    assert await tcp.expect(lambda s: "waves" in s) == f"* {ws.name} waves"
    await tcp.send("/me nods")
    assert (await ws.expect("message", text="nods"))["kind"] == "me"
    await ws.request({"type": "nick", "name": "Calm Heron"}, "notice")
    assert await tcp.expect(lambda s: "Heron" in s) == (
        f"-- {ws.name} is now known as Calm Heron in #lobby"
    )
    await tcp.send("/nick Still Pond")
    presence = await ws.expect("presence", event="nick")
    assert (presence["old"], presence["name"], presence["count"]) == (tcp.name, "Still Pond", 2)


async def test_presence_rooms_who_and_leave(server: ChatServer) -> None:
    a, b = [await WsClient.open(server.http_port) for _ in range(2)]
    joined = await a.expect("presence", event="join", uid=b.uid)
    assert (joined["room"], joined["name"], joined["count"]) == ("lobby", b.name, 2)
    reply = await b.request({"type": "join", "room": "Quiet-Corner"}, "joined")
    assert (reply["room"], reply["count"]) == ("quiet-corner", 1)
    rooms = await a.request({"type": "rooms"}, "rooms")
    assert rooms["rooms"] == [{"name": "lobby", "count": 2}, {"name": "quiet-corner", "count": 1}]
    who = await a.request({"type": "who", "room": "quiet-corner"}, "who")
    assert who["members"] == [{"uid": b.uid, "name": b.name}]
    assert (await b.request({"type": "leave", "room": "lobby"}, "left"))["room"] == "lobby"
    left = await a.expect("presence", event="leave")
    assert (left["uid"], left["count"]) == (b.uid, 1)
    assert set(await a.request({"type": "ping"}, "pong")) == {"type", "ref"}


# (frame, expected code, expected ref). A str is sent as a text frame as is; bytes as a
# binary frame; ("text", bytes) as a text frame carrying those bytes.
ERRORS: list[tuple[str, Any, str, str | None]] = [
    ("not-json", "{not json", "bad_json", None),
    ("missing-field", {"type": "say", "ref": "e1"}, "bad_request", "e1"),
    ("wrong-type", {"type": "say", "text": 5, "ref": "e2"}, "bad_request", "e2"),
    ("bad-last", {"type": "resume", "session": "x", "last": [], "ref": "e3"}, "bad_request", "e3"),
    ("not-object", "[1, 2, 3]", "bad_request", None),
    ("truncated-array", "[1, 2", "bad_json", None),
    ("truncated-frame", '{"type": "say", "text": 1, "ref": "t1"', "bad_json", None),
    ("deep-truncated", "[" * 5000, "bad_json", None),
    ("deep", '{"type": "ping", "x": ' + "[" * 5000 + "]" * 5000 + "}", "bad_request", None),
    ("no-type", {"text": "hi", "ref": "e4"}, "bad_request", "e4"),
    ("binary", b'{"type": "ping", "ref": "e5"}', "bad_request", "e5"),
    ("empty-text", {"type": "say", "text": " \u200b ", "ref": "e6"}, "bad_request", "e6"),
    ("bad-room", {"type": "join", "room": "no such!", "ref": "e7"}, "bad_request", "e7"),
    (
        "out-of-range",
        '{"type": "resume", "session": "s", "last": {"lobby": 1e400}, "ref": "e8"}',
        "bad_request",
        "e8",
    ),
    ("ignore-nobody", {"type": "ignore", "ref": "e20"}, "bad_request", "e20"),
    ("unknown", {"type": "dance", "ref": "e9"}, "unknown_type", "e9"),
    ("long-text", {"type": "say", "text": "x" * 2001, "ref": "e10"}, "too_long", "e10"),
    ("big-frame", {"type": "say", "text": "x" * 70000, "ref": "e11"}, "too_long", "e11"),
    (
        "other-room",
        {"type": "say", "room": "elsewhere", "text": "hi", "ref": "e12"},
        "not_in_room",
        "e12",
    ),
    ("leave-other", {"type": "leave", "room": "elsewhere", "ref": "e13"}, "not_in_room", "e13"),
    ("private-join", {"type": "join", "room": "dm-secret", "ref": "e14"}, "forbidden", "e14"),
    ("private-who", {"type": "who", "room": "dm-secret", "ref": "e15"}, "forbidden", "e15"),
    ("mod-command", {"type": "say", "text": "/announce hi", "ref": "e16"}, "forbidden", "e16"),
    ("reserved-name", {"type": "nick", "name": "Admin", "ref": "e17"}, "invalid_name", "e17"),
    ("long-name", {"type": "nick", "name": "n" * 25, "ref": "e18"}, "invalid_name", "e18"),
    ("empty-name", {"type": "nick", "name": "", "ref": "e19"}, "invalid_name", "e19"),
]


async def _send_any(client: WsClient, frame: Any) -> None:
    if isinstance(frame, tuple):
        await client.ws.send(frame[1], text=True)
    else:
        await client.send(frame)


@pytest.mark.parametrize(
    ("frame", "code", "ref"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
async def test_bad_frames_get_an_error_with_their_ref_and_nothing_else_breaks(
    server: ChatServer, frame: Any, code: str, ref: str | None
) -> None:
    sender, other = [await WsClient.open(server.http_port) for _ in range(2)]
    await _send_any(sender, frame)
    error = await sender.expect("error")
    assert (error["code"], error.get("ref")) == (code, ref), error
    assert isinstance(error["message"], str) and error["message"]
    # The connection goes on, and nothing was broadcast for the refused frame.
    await sender.request({"type": "say", "text": "after"}, "message")
    assert (await other.expect("message"))["text"] == "after"


async def test_fragmented_frames_are_reassembled(server: ChatServer) -> None:
    ws = await WsClient.open(server.http_port)
    await ws.ws.send(['{"type": "say", "te', 'xt": "in ', 'pieces", "ref": "f1"}'])
    assert (await ws.expect("message", ref="f1"))["text"] == "in pieces"
    big = json.dumps({"type": "say", "text": "y" * 70000, "ref": "f2"})
    await ws.ws.send([big[i : i + 10000] for i in range(0, len(big), 10000)])
    assert (await ws.expect("error", ref="f2"))["code"] == "too_long"
    await ws.request({"type": "ping"}, "pong")


async def test_every_request_type_is_answered_with_its_ref(server: ChatServer) -> None:
    """A frame is never met with silence: each type, in its smallest valid form, gets a reply
    or an error carrying its ref; a type not built yet says `unavailable`."""
    for kind in rq.AnyRequest.__args__:
        ws = await WsClient.open(server.http_port)
        frame = {**_minimal(kind), "ref": "every"}
        await ws.send(frame)
        reply = await ws.recv()
        while reply.get("ref") != "every":
            reply = await ws.recv()
        if not server.chat or not server.chat.can_handle(kind):
            assert (reply["type"], reply["code"]) == ("error", "unavailable"), (frame, reply)
        if reply["type"] != "bye":  # quit and forget end the connection, by design
            await ws.request({"type": "ping"}, "pong")
        await ws.close()


def _minimal(kind: type[rq.Request]) -> dict[str, Any]:
    """The smallest valid frame of a request type (required fields filled in)."""
    frame: dict[str, Any] = {"type": kind.__struct_config__.tag}
    samples: dict[Any, Any] = {str: "x", int: 1, float: 1.0, bool: True}
    for field in msgspec.structs.fields(kind):
        if field.required:
            frame[field.encode_name] = samples[field.type]
    return frame


async def test_rate_limit_refuses_with_an_error_and_broadcasts_nothing() -> None:
    server = await start_server(msg_rate=0.001, msg_burst=2.0)
    try:
        sender, other = [await WsClient.open(server.http_port) for _ in range(2)]
        for n in range(2):
            await sender.request({"type": "say", "text": f"ok {n}"}, "message")
        error = await sender.request({"type": "say", "text": "one too many"}, "error")
        assert error["code"] == "rate_limited"
        await sender.request({"type": "ping"}, "pong")  # free requests still work
        await sender.request({"type": "resources"}, "notice")
        assert [(await other.expect("message"))["text"] for _ in range(2)] == ["ok 0", "ok 1"]
        await other.request({"type": "ping"}, "pong")
        assert not [f for f in other.backlog if f["type"] == "message"]
    finally:
        await server.stop()


async def test_names_are_unique(server: ChatServer) -> None:
    a, b = [await WsClient.open(server.http_port) for _ in range(2)]
    error = await b.request({"type": "nick", "name": a.name.upper()}, "error")
    assert error["code"] == "name_taken"
    notice = await b.request({"type": "nick", "name": "Soft Rain"}, "notice")
    assert notice["name"] == "Soft Rain"


async def test_connections_per_address_are_capped() -> None:
    server = await start_server(max_conns_per_address=2)
    try:
        first = [await WsClient.open(server.http_port, local_addr="127.0.0.2") for _ in range(2)]
        refused = await WsClient.open(server.http_port, welcome=False, local_addr="127.0.0.2")
        error = await refused.recv()
        assert error["type"] == "error" and error["code"] == "too_many_connections"
        assert await refused.recv() == {"type": "bye", "reason": "too_many_connections"}
        with pytest.raises(Exception, match="1000"):
            await refused.recv()  # then a normal close
        other = await WsClient.open(server.http_port, local_addr="127.0.0.3")  # its own budget
        await other.request({"type": "ping"}, "pong")
        await first[0].close()
        chat = server.chat
        assert chat is not None
        await eventually(lambda: len(chat.links) == 2)  # the server has seen that close
        again = await WsClient.open(server.http_port, local_addr="127.0.0.2")
        await again.request({"type": "ping"}, "pong")
    finally:
        await server.stop()


async def test_new_connections_per_address_are_capped() -> None:
    server = await start_server(new_conns_per_address=3)
    try:
        for _ in range(3):
            await (await WsClient.open(server.http_port, local_addr="127.0.0.4")).close()
        refused = await WsClient.open(server.http_port, welcome=False, local_addr="127.0.0.4")
        error = await refused.recv()
        assert error["code"] == "too_many_connections" and "new connections" in error["message"]
        tcp = await TextClient.open(server.tcp_port, greet=False, local_addr="127.0.0.4")
        assert (await tcp.line()).startswith("!! too many new connections")
        await WsClient.open(server.http_port, local_addr="127.0.0.5")
    finally:
        await server.stop()


async def test_same_order_at_every_receiver_with_concurrent_senders(server: ChatServer) -> None:
    senders = [await WsClient.open(server.http_port) for _ in range(5)]
    receivers = [await WsClient.open(server.http_port) for _ in range(3)]
    total = 5 * 30

    async def talk(index: int, client: WsClient) -> None:
        for n in range(30):
            await client.send({"type": "say", "room": "lobby", "text": f"{index}.{n}"})

    async def collect(client: WsClient) -> list[tuple[int, str]]:
        got: list[tuple[int, str]] = []
        while len(got) < total:
            frame = await client.expect("message", timeout=20)
            got.append((frame["id"], frame["text"]))
        return got

    collectors = [asyncio.create_task(collect(c)) for c in receivers + senders]
    await asyncio.gather(*(talk(i, c) for i, c in enumerate(senders)))
    seen = await asyncio.gather(*collectors)
    reference = seen[0]
    assert [i for i, _ in reference] == sorted({i for i, _ in reference})  # ids increase
    assert {t for _, t in reference} == {f"{i}.{n}" for i in range(5) for n in range(30)}
    for got in seen:
        assert got == reference  # every receiver, senders included, saw one order
    for index in range(5):  # and each sender's own order is kept
        own = [t for _, t in reference if t.startswith(f"{index}.")]
        assert own == [f"{index}.{n}" for n in range(30)]


async def test_quit_and_stop_say_bye(server: ChatServer) -> None:
    a, b = [await WsClient.open(server.http_port) for _ in range(2)]
    assert (await a.request({"type": "say", "text": "/quit"}, "bye"))["reason"] == "quit"
    left = await b.expect("presence", event="leave")
    assert left["uid"] == a.uid  # a quit is not resumable: the others see it at once
    await server.stop()
    assert (await b.expect("bye"))["reason"] == "server_shutdown"


async def test_a_peer_that_stops_answering_pings_is_closed() -> None:
    server = await start_server(ping_interval=0.2, ping_timeout=0.4)
    try:
        silent = await RawWs.open(server.http_port)
        silent.answer_pings = False
        with pytest.raises((EOFError, ConnectionError)):
            for _ in range(1000):  # frames until the server gives up on us
                await silent.event(timeout=10)
        assert server.chat is not None
        assert server.chat.counters.get("keepalive_timeouts") == 1
        assert silent.pings >= 1
    finally:
        await server.stop()


async def test_a_quiet_peer_that_answers_pings_stays() -> None:
    server = await start_server(ping_interval=0.2, ping_timeout=0.4)
    try:
        quiet = await RawWs.open(server.http_port)
        other = await WsClient.open(server.http_port)
        while quiet.pings < 5:  # about a second of silence from us, answered pings only
            await quiet.event(timeout=10)
        other_says = await other.request({"type": "say", "text": "still there?"}, "message")
        while (frame := await quiet.json())["type"] != "message":
            pass
        assert frame["id"] == other_says["id"]
        assert server.chat is not None and not server.chat.counters.get("keepalive_timeouts")
    finally:
        await server.stop()


async def test_one_keepalive_sweep_drops_the_silent_and_keeps_the_answering() -> None:
    """Every WebSocket of a listener shares one keepalive timer: among several peers on the
    same sweep, only the one that stops answering is closed; with nobody left, the timer
    is gone."""
    server = await start_server(ping_interval=0.2, ping_timeout=0.4)
    try:
        silent, quiet = [await RawWs.open(server.http_port) for _ in range(2)]
        other = await WsClient.open(server.http_port)
        silent.answer_pings = False
        assert server.chat is not None
        sink = cast(HttpConnection, next(iter(server.chat.links)).sink)
        keepalive = sink.keepalive
        assert len(keepalive.peers) == 3 and keepalive.timer is not None

        async def until_closed() -> None:
            with pytest.raises((EOFError, ConnectionError)):
                for _ in range(1000):  # frames until the server gives up on it
                    await silent.event(timeout=10)

        async def answering() -> None:
            while quiet.pings < 5:  # about a second of silence, answered pings only
                await quiet.event(timeout=10)

        await asyncio.gather(until_closed(), answering())
        assert server.chat.counters.get("keepalive_timeouts") == 1
        assert silent.pings >= 1
        other_says = await other.request({"type": "say", "text": "still there?"}, "message")
        while (frame := await quiet.json())["type"] != "message":
            pass
        assert frame["id"] == other_says["id"]
        assert await eventually(lambda: len(keepalive.peers) == 2)
        await quiet.close()
        await other.close()
        assert await eventually(lambda: not keepalive.peers and keepalive.timer is None)
    finally:
        await server.stop()


async def test_a_socket_that_never_finishes_its_handshake_is_closed() -> None:
    server = await start_server(handshake_timeout=0.3)
    try:
        for opening in (b"", b"GET /ws HTTP/1.1\r\nHost: x\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
            writer.write(opening)
            with pytest.raises((ConnectionError, EOFError, asyncio.IncompleteReadError)):
                data = await asyncio.wait_for(reader.read(), WAIT)
                if not data:
                    raise EOFError
            writer.close()
        ws = await WsClient.open(server.http_port)  # a real client is not affected
        await ws.request({"type": "ping"}, "pong")
    finally:
        await server.stop()
