"""Order and resume without loss (CONTRACT §5), over real sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chatsupport import ChatServer
from chatsupport.core.events import Message
from chatsupport.core.lifecycle import AWAY_KEPT

from ..helpers import WAIT, WsClient, abort_timers, eventually, start_server
from ..mod_helpers import staff_ws
from ..transport.test_http import http

RESUME_FIRST = "/ws?resume=1"  # resume is the first frame: no fresh identity in between


async def cut(client: WsClient) -> None:
    """Drop the client's socket without a goodbye, as a lost network does."""
    client.ws.transport.abort()
    await client.close()


async def resume(
    port: int, token: str, last: dict[str, int], path: str = RESUME_FIRST
) -> tuple[WsClient, list[dict[str, Any]]]:
    """Reconnect and resume; returns the client and every frame up to `resumed`."""
    client = await WsClient.open(port, welcome=False, path=path)
    frames: list[dict[str, Any]] = []
    if path != RESUME_FIRST:  # the old way: a fresh identity first, then resume
        frames += [await client.recv(), await client.recv()]
    await client.send({"type": "resume", "session": token, "last": last, "ref": "back"})
    while not frames or frames[-1]["type"] != "resumed":
        frames.append(await client.recv())
    client.welcome = frames[0]
    return client, frames


def texts(frames: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in frames if f["type"] == "message"]


async def until_reply(client: WsClient, frame: dict[str, Any], reply: str) -> list[dict[str, Any]]:
    """Send `frame` and return everything received up to and including its reply."""
    await client.send({**frame, "ref": "sync"})
    got = [await client.recv()]
    while not (got[-1]["type"] == reply and got[-1].get("ref") == "sync"):
        got.append(await client.recv())
    return got


@pytest.mark.parametrize("path", [RESUME_FIRST, "/ws"], ids=["resume-first", "resume-later"])
async def test_resume_after_a_cut_gets_exactly_the_missed_messages(
    server: ChatServer, path: str
) -> None:
    a, b, watcher = [await WsClient.open(server.http_port) for _ in range(3)]
    base = (await a.request({"type": "say", "text": "before"}, "message"))["id"]
    await until_reply(watcher, {"type": "ping"}, "pong")
    await cut(a)
    sent = [f"missed {n}" for n in range(20)]
    for text in sent:
        await b.request({"type": "say", "text": text}, "message")
    back, frames = await resume(server.http_port, a.welcome["session"], {"lobby": base}, path)
    replayed = [f for f in frames if f["type"] == "message"]
    assert [m["text"] for m in replayed] == sent  # exactly those 20, in order, once
    assert [m["id"] for m in replayed] == list(range(base + 1, base + 21))
    assert frames[-1] == {"type": "resumed", "missed": 20, "complete": True, "ref": "back"}
    # Nothing more arrives after `resumed` but live traffic, and the person is who they were.
    after = await until_reply(back, {"type": "say", "text": "I'm back"}, "message")
    assert [f["type"] for f in after] == ["message"]
    assert (after[0]["uid"], after[0]["name"]) == (a.uid, a.name)
    assert (await b.expect("message", text="I'm back"))["uid"] == a.uid
    seen = await until_reply(watcher, {"type": "who"}, "who")
    assert [m["uid"] for m in seen[-1]["members"]].count(a.uid) == 1
    noise = [(f["event"], f["uid"] == a.uid) for f in seen if f["type"] == "presence"]
    if path == RESUME_FIRST:
        assert frames[0]["uid"] == a.uid and frames[0]["session"] == a.welcome["session"]
        # Nobody saw a stranger come and go: only that a was away for a while.
        assert noise == [("away", True), ("back", True)]
    else:
        assert noise == [("away", True), ("join", False), ("leave", False), ("back", True)]


async def test_resume_beyond_retention_is_incomplete() -> None:
    server = await start_server(retention_messages=5)
    try:
        a, b = [await WsClient.open(server.http_port) for _ in range(2)]
        base = (await a.request({"type": "say", "text": "before"}, "message"))["id"]
        await cut(a)
        for n in range(20):
            await b.request({"type": "say", "text": f"m{n}"}, "message")
        _, frames = await resume(server.http_port, a.welcome["session"], {"lobby": base})
        assert texts(frames) == [f"m{n}" for n in range(15, 20)]  # the last 5 retained
        assert frames[-1] == {"type": "resumed", "missed": 5, "complete": False, "ref": "back"}
    finally:
        await server.stop()


async def test_resume_after_the_grace_period_shows_the_person_returning() -> None:
    server = await start_server(resume_grace=0.1)
    try:
        a, b = [await WsClient.open(server.http_port) for _ in range(2)]
        await cut(a)
        left = await b.expect("presence", event="leave", timeout=10)  # housekeeping runs ~1/s
        assert (left["uid"], left["count"]) == (a.uid, 1)
        await b.request({"type": "say", "text": "while you were away"}, "message")
        back, frames = await resume(server.http_port, a.welcome["session"], {"lobby": 0})
        assert texts(frames) == ["while you were away"] and frames[-1]["complete"] is True
        assert frames[0]["rooms"] == ["lobby"]
        joined = await b.expect("presence", event="join")
        assert (joined["uid"], joined["name"], joined["count"]) == (a.uid, a.name, 2)
        await back.request({"type": "say", "text": "hi again"}, "message")
        assert (await b.expect("message", text="hi again"))["uid"] == a.uid
    finally:
        await server.stop()


@pytest.mark.parametrize("path", [RESUME_FIRST, "/ws"], ids=["resume-first", "resume-later"])
async def test_an_unknown_or_forgotten_token_resumes_nothing(server: ChatServer, path: str) -> None:
    a = await WsClient.open(server.http_port)
    assert (await a.request({"type": "forget"}, "bye"))["reason"] == "forgotten"
    for token in ("no-such-token", a.welcome["session"]):
        back, frames = await resume(server.http_port, token, {"lobby": 0}, path)
        assert frames[-1] == {"type": "resumed", "missed": 0, "complete": False, "ref": "back"}
        assert frames[0]["type"] == "welcome" and frames[0]["uid"] != a.uid  # someone new
        await back.request({"type": "say", "text": "fresh start"}, "message")


async def test_resuming_a_live_session_moves_it(server: ChatServer) -> None:
    a, b = [await WsClient.open(server.http_port) for _ in range(2)]
    back, frames = await resume(server.http_port, a.welcome["session"], {"lobby": 0})
    assert (await a.expect("bye"))["reason"] == "resumed_elsewhere"
    assert frames[0]["uid"] == a.uid and frames[-1]["complete"] is True
    await back.request({"type": "say", "text": "same me, new tab"}, "message")
    assert (await b.expect("message", text="same me, new tab"))["uid"] == a.uid
    assert not [f for f in b.backlog if f["type"] == "presence"]


async def test_too_slow_peer_gets_bye_and_resumes_without_loss() -> None:
    deadlines = abort_timers()  # other tests' (the event loop is shared)
    server = await start_server(
        outbox_limit=64 * 1024,
        msg_rate=1e6,
        msg_burst=1e6,
        retention_messages=100000,
        metrics_port=0,
    )
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.http_port))
        # A client that stops reading: its library reads a few frames ahead, then pauses.
        # Uncompressed: repeated text shrinks to nothing with permessage-deflate.
        slow = WsClient(
            await connect("ws://x/ws", sock=sock, max_queue=4, max_size=1 << 22, compression=None)
        )
        slow.welcome = await slow.expect("welcome")
        talker = await WsClient.open(server.http_port)
        assert server.chat is not None
        payload = "z" * 1500
        sent = 0
        for _ in range(200):  # up to ~15 MB: past the kernel's buffers and our 64 KiB bound
            for _ in range(50):
                await talker.send({"type": "say", "text": f"{sent} {payload}"})
                sent += 1
            await talker.request({"type": "ping"}, "pong")  # the talker keeps reading
            talker.backlog.clear()
            if server.chat.counters.get("slow_disconnects"):
                break
        assert server.chat.counters.get("slow_disconnects") == 1
        received: list[dict[str, Any]] = []
        with pytest.raises(ConnectionClosed):
            for _ in range(sent + 10):
                received.append(await slow.recv(timeout=WAIT))
        assert received[-1] == {"type": "bye", "reason": "too_slow"}
        # The deadline that cuts a peer that never reads went with its connection: none is
        # left to fire on a closed transport later (the loop's own pending timers).
        await eventually(lambda: not abort_timers() - deadlines, 5.0)
        assert abort_timers() - deadlines == set()
        got = [f for f in received if f["type"] == "message"]
        ids = [m["id"] for m in got]
        assert ids == list(range(1, len(ids) + 1))  # a gapless prefix of what was sent
        for n in range(5):  # the room goes on meanwhile
            await talker.request({"type": "say", "text": f"later {n}"}, "message")
        _, frames = await resume(server.http_port, slow.welcome["session"], {"lobby": ids[-1]})
        replayed = [f for f in frames if f["type"] == "message"]
        assert [m["id"] for m in replayed] == list(range(ids[-1] + 1, sent + 6))
        assert texts(replayed)[-5:] == [f"later {n}" for n in range(5)]
        assert frames[-1]["missed"] == len(replayed) and frames[-1]["complete"] is True
        metrics = (await http(server.metrics_port, "/metrics"))[2].decode()
        assert 'chatsupport_events_total{kind="slow_disconnects"} 1.0' in metrics
        assert 'chatsupport_events_total{kind="resumes"} 1.0' in metrics
    finally:
        await server.stop()


async def test_joined_says_where_to_resume_a_room_with_nothing_seen_yet(
    server: ChatServer,
) -> None:
    a, b = [await WsClient.open(server.http_port) for _ in range(2)]
    await b.request({"type": "join", "room": "calm"}, "joined")
    for n in range(3):  # said before a came in: not a's to see, even by asking
        await b.request({"type": "say", "room": "calm", "text": f"earlier {n}"}, "message")
    joined = await a.request({"type": "join", "room": "calm"}, "joined")
    assert joined["last"] == 3 and a.welcome["rooms"] == ["lobby"]
    await cut(a)
    await b.request({"type": "say", "room": "calm", "text": "while away"}, "message")
    for last in ({"calm": joined["last"]}, {"calm": 0}):
        back, frames = await resume(server.http_port, a.welcome["session"], last)
        assert frames[0]["rooms"] == ["lobby", "calm"]
        assert [(f["room"], f.get("last", 0)) for f in frames if f["type"] == "joined"] == [
            ("lobby", 0),
            ("calm", 4),
        ]
        assert texts(frames) == ["while away"] and frames[-1]["complete"] is True
        await cut(back)


# ---- events for one person (not a room's) around a resume ------------------------------------
@asynccontextmanager
async def replay_paused(server: ChatServer) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Holds the next resume inside its replay (its first history read; later reads pass)
    until the block ends: a sync point for what happens meanwhile. Yields a wait for the
    replay to be there. The broker still does the work; with a shared broker, its network
    round trip opens this window."""
    assert server.chat is not None
    broker = server.chat.broker
    real = broker.history
    inside, go_on = asyncio.Event(), asyncio.Event()

    async def paused(room: str, after: int, limit: int | None = None) -> tuple[list[Message], bool]:
        if not inside.is_set():
            inside.set()
            await go_on.wait()
        return await real(room, after, limit)

    async def reached() -> None:
        await asyncio.wait_for(inside.wait(), WAIT)

    broker.history = paused  # type: ignore[method-assign]
    try:
        yield reached
    finally:
        go_on.set()
        broker.history = real  # type: ignore[method-assign]


async def mute(mod: WsClient, uid: str, minutes: int) -> None:
    """A moderator mutes `uid`: a direct `notice {kind: "mute"}` for them."""
    await mod.request({"type": "mute", "uid": uid, "minutes": minutes}, "notice")


async def away_with_missed(server: ChatServer, n: int) -> tuple[WsClient, WsClient, int]:
    """`a` is cut off while `b` says `n` messages; returns a, b and a's last id."""
    a, b = [await WsClient.open(server.http_port) for _ in range(2)]
    base = (await a.request({"type": "say", "text": "before"}, "message"))["id"]
    await cut(a)
    for k in range(n):
        await b.request({"type": "say", "text": f"missed {k}"}, "message")
    return a, b, base


@pytest.mark.parametrize("path", [RESUME_FIRST, "/ws"], ids=["resume-first", "resume-later"])
async def test_direct_events_during_the_replay_follow_it(
    staff_server: ChatServer, path: str
) -> None:
    mod = await staff_ws(staff_server.http_port)
    a, _, base = await away_with_missed(staff_server, 3)
    async with replay_paused(staff_server) as reached:
        task = asyncio.create_task(
            resume(staff_server.http_port, a.welcome["session"], {"lobby": base}, path)
        )
        await reached()
        await mute(mod, a.uid, 7)  # reaches a while the missed messages are on their way
    _, frames = await asyncio.wait_for(task, WAIT)
    after_welcome = [f["type"] for f in frames if f["type"] in ("message", "notice")]
    assert after_welcome == ["message"] * 3 + ["notice"]
    assert texts(frames) == [f"missed {k}" for k in range(3)]
    assert "muted you for 7 minutes" in frames[-2]["text"]
    assert frames[-1] == {"type": "resumed", "missed": 3, "complete": True, "ref": "back"}


@pytest.mark.parametrize("path", [RESUME_FIRST, "/ws"], ids=["resume-first", "resume-later"])
async def test_direct_events_while_away_come_after_the_replay(
    staff_server: ChatServer, path: str
) -> None:
    mod = await staff_ws(staff_server.http_port)
    a, _, base = await away_with_missed(staff_server, 2)
    extra = 5
    for minutes in range(1, AWAY_KEPT + extra + 1):  # more than are kept: the newest stay
        await mute(mod, a.uid, minutes)
    back, frames = await resume(staff_server.http_port, a.welcome["session"], {"lobby": base}, path)
    replayed = [i for i, f in enumerate(frames) if f["type"] == "message"]
    notices = [i for i, f in enumerate(frames) if f["type"] == "notice"]
    assert texts(frames) == ["missed 0", "missed 1"]
    assert len(notices) == AWAY_KEPT and max(replayed) < min(notices)
    said = [frames[i]["text"] for i in notices]
    newest = range(extra + 1, AWAY_KEPT + extra + 1)
    assert all(f"muted you for {m} minutes" in t for m, t in zip(newest, said, strict=True))
    assert frames[-1]["type"] == "resumed" and frames[-2] is frames[notices[-1]]
    # Given once: the next resume has nothing more to give.
    await cut(back)
    _, again = await resume(staff_server.http_port, a.welcome["session"], {"lobby": base + 2}, path)
    assert [f for f in again if f["type"] in ("notice", "message")] == []


async def test_a_resume_taken_over_mid_replay_hands_on_what_it_held(
    staff_server: ChatServer,
) -> None:
    mod = await staff_ws(staff_server.http_port)
    a, _, base = await away_with_missed(staff_server, 1)
    await mute(mod, a.uid, 1)  # kept while away
    async with replay_paused(staff_server) as reached:
        first = asyncio.create_task(
            resume(staff_server.http_port, a.welcome["session"], {"lobby": base})
        )
        await reached()
        await mute(mod, a.uid, 2)  # held behind the first replay, which never finishes:
        # the person comes back on another connection meanwhile (a second tab, a retry).
        second, frames = await resume(staff_server.http_port, a.welcome["session"], {"lobby": base})
    assert frames[0]["uid"] == a.uid and texts(frames) == ["missed 0"]
    notices = [f["text"] for f in frames if f["type"] == "notice"]
    assert len(notices) == 2, notices
    assert "muted you for 1 minute" in notices[0] and "muted you for 2 minutes" in notices[1]
    assert frames[-1] == {"type": "resumed", "missed": 1, "complete": True, "ref": "back"}
    with pytest.raises((ConnectionClosed, TimeoutError)):
        await asyncio.wait_for(first, WAIT)  # told `resumed_elsewhere` and closed
    await second.request({"type": "ping"}, "pong")
    assert [f for f in second.backlog if f["type"] == "notice"] == []  # each once
