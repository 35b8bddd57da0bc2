"""A resume replays at the pace the connection reads (issue 18): a backlog of any size, up to
what the server keeps, comes back whole over a slow reader, never cut `too_slow`; live
events held meanwhile follow it, and past their bound the replay ends incomplete, saying
why, and the connection goes on. Over real sockets, on both brokers and across nodes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from chatsupport import ChatServer

from ..helpers import OPEN_CLIENTS, WAIT, WsClient, eventually, start_server
from ..ircraw import IrcClient
from ..redis_server import RedisServer, delete_prefix, redis_server_fixture
from ..wsframes import CLOSE, TEXT, frame
from .test_resume import cut, resume

redis_server = pytest.fixture(scope="session")(redis_server_fixture)

ROOMS = ["r1", "r2", "r3", "r4"]
KEPT = 500  # the default retention: the whole backlog a room keeps
WORDS = 1000  # characters per message, as in the report
READ_FOR = 120.0  # seconds a slow reader may take for everything (a bound, not a measure)


class SlowReader:
    """A WebSocket client on a raw socket that reads slowly: a small receive buffer, a few
    KiB at a time with a pause between, or nothing at all until told to go on. Its frames
    are parsed here (RFC 6455; no compression offered)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        OPEN_CLIENTS.append(self)  # type: ignore[arg-type]

    @classmethod
    async def open(cls, port: int, path: str = "/ws?resume=1") -> SlowReader:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), WAIT)
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(
            sock,
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode(),
        )
        reader = cls(sock)
        async with asyncio.timeout(WAIT):
            while b"\r\n\r\n" not in reader.buffer:
                reader.buffer += await reader._recv(4096)
        head, _, rest = bytes(reader.buffer).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        reader.buffer = bytearray(rest)
        return reader

    async def _recv(self, size: int) -> bytes:
        data = await asyncio.get_running_loop().sock_recv(self.sock, size)
        if not data:
            raise EOFError("the server closed the connection")
        return data

    async def send(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        await asyncio.get_running_loop().sock_sendall(self.sock, frame(TEXT, payload))

    def _frame(self) -> tuple[int, bytes] | None:
        """The next whole frame in the buffer (opcode, payload), taken out of it."""
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        size, header = buffer[1] & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                return None
            size, header = struct.unpack("!H", buffer[2:4])[0], 4
        elif size == 127:
            if len(buffer) < 10:
                return None
            size, header = struct.unpack("!Q", buffer[2:10])[0], 10
        if len(buffer) < header + size:
            return None
        opcode, payload = buffer[0] & 0x0F, bytes(buffer[header : header + size])
        del buffer[: header + size]
        return opcode, payload

    async def read(
        self, until: Callable[[dict[str, Any]], bool], chunk: int = 4096, pause: float = 0.001
    ) -> list[dict[str, Any]]:
        """JSON frames up to the first `until` accepts, read `chunk` bytes at a time with
        `pause` between (bounded by READ_FOR). A close frame fails the test, saying why."""
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(READ_FOR):
            while True:
                while (got := self._frame()) is not None:
                    opcode, payload = got
                    if opcode == CLOSE:
                        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                        raise AssertionError(f"closed {code} after {frames[-2:]}")
                    if opcode == TEXT:
                        frames.append(json.loads(payload))
                        if until(frames[-1]):
                            return frames
                self.buffer += await self._recv(chunk)
                await asyncio.sleep(pause)

    async def close(self) -> None:
        self.sock.close()


def is_type(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["type"] == kind and all(f.get(k) == v for k, v in fields.items())


async def say_many(talker: WsClient, rooms: list[str], count: int, words: int) -> None:
    """`count` messages of `words` characters in each room, 50 at a time (the talker keeps
    reading its own copies meanwhile)."""
    for room in rooms:
        for start in range(0, count, 50):
            for n in range(start, min(start + 50, count)):
                text = f"{room} {n} " + "x" * (words - len(f"{room} {n} "))
                await talker.send({"type": "say", "room": room, "text": text})
            await talker.request({"type": "ping"}, "pong")
            talker.backlog.clear()


async def joined_all(client: WsClient, rooms: list[str]) -> dict[str, int]:
    """Joins each room; where a resume of each starts (`joined.last`)."""
    last = {}
    for room in rooms:
        last[room] = (await client.request({"type": "join", "room": room}, "joined")).get("last", 0)
    return last


@contextlib.asynccontextmanager
async def two_servers(
    request: pytest.FixtureRequest, where: str, **overrides: Any
) -> AsyncIterator[tuple[ChatServer, ChatServer]]:
    """(where the person was, where they resume): one server in memory, one on Redis, or
    two nodes on Redis."""
    servers: list[ChatServer] = []
    redis: RedisServer | None = None
    prefix = f"p{os.urandom(5).hex()}:"
    try:
        if where == "memory":
            servers.append(await start_server(**overrides))
        else:
            redis = request.getfixturevalue("redis_server")
            for _ in range(2 if where == "redis-two-nodes" else 1):
                servers.append(await start_server(broker=redis.url(prefix), **overrides))
        yield servers[0], servers[-1]
    finally:
        for server in servers:
            await server.stop()
        if redis is not None:
            delete_prefix(redis, prefix)


WHERE = [
    pytest.param("memory"),
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-two-nodes", marks=pytest.mark.redis),
]


@pytest.mark.parametrize("where", WHERE)
async def test_a_backlog_at_the_retention_limit_in_four_rooms_comes_back_whole_to_a_slow_reader(
    request: pytest.FixtureRequest, where: str
) -> None:
    async with two_servers(request, where, msg_rate=1e6, msg_burst=1e6) as (first, back):
        a, talker = [await WsClient.open(first.http_port) for _ in range(2)]
        # "now" first: replayed (nothing) before the live messages come, which are held.
        last = await joined_all(a, ["now", *ROOMS])
        await joined_all(talker, ROOMS)
        await cut(a)
        await say_many(talker, ROOMS, KEPT, WORDS)  # 2,000 messages, about 2.4 MB of frames
        live = await WsClient.open(back.http_port)  # says live messages where `a` comes back
        await joined_all(live, ["now"])

        slow = await SlowReader.open(back.http_port)
        await slow.send({"type": "resume", "session": a.welcome["session"], "last": last})
        frames = await slow.read(is_type("message"))  # the replay is on its way
        # Held for `a` until the replay is done (the same node delivers). Said at once, not
        # one round trip after another: the kernel's send buffer takes the whole replay, so
        # the server finishes it within milliseconds of the first message read here.
        for n in range(3):
            await live.send({"type": "say", "room": "now", "text": f"live {n}", "ref": f"l{n}"})
        for n in range(3):
            await live.expect("message", ref=f"l{n}")
        frames += await slow.read(is_type("resumed"))

        assert not [f for f in frames if f["type"] in ("bye", "error")]
        messages = [f for f in frames if f["type"] == "message"]
        for room in ROOMS:
            got = [m for m in messages if m["room"] == room]
            assert [m["id"] for m in got] == list(range(last[room] + 1, last[room] + KEPT + 1))
            assert all(m["text"].startswith(f"{room} {n} ") for n, m in enumerate(got))
        assert [m["room"] for m in messages[: len(ROOMS) * KEPT]] == [
            room for room in ROOMS for _ in range(KEPT)
        ]  # room after room, each whole
        assert [m["text"] for m in messages[len(ROOMS) * KEPT :]] == [f"live {n}" for n in range(3)]
        assert frames[-1] == {"type": "resumed", "missed": len(ROOMS) * KEPT, "complete": True}
        # The connection goes on, live, as the same person.
        await slow.send({"type": "say", "room": "now", "text": "back", "ref": "b"})
        echo = (await slow.read(is_type("message", ref="b")))[-1]
        assert (echo["uid"], echo["text"]) == (a.uid, "back")
        assert back.chat is not None and back.chat.counters.get("slow_disconnects", 0) == 0


async def test_a_replay_overtaken_by_live_traffic_ends_incomplete_and_the_connection_goes_on() -> (
    None
):
    server = await start_server(
        msg_rate=1e6, msg_burst=1e6, outbox_limit=64 * 1024, resume_held_limit=5
    )
    try:
        a, talker = [await WsClient.open(server.http_port) for _ in range(2)]
        last = await joined_all(a, ["lobby", "calm"])
        await joined_all(talker, ["calm"])
        await cut(a)
        await say_many(talker, ["lobby", "calm"], KEPT, WORDS)

        slow = await SlowReader.open(server.http_port)
        await slow.send({"type": "resume", "session": a.welcome["session"], "last": last})
        frames = await slow.read(is_type("message"))  # on its way; the reader stops reading
        for n in range(8):  # more than the 5 held for one person: the sixth cuts the replay
            await talker.request({"type": "say", "room": "calm", "text": f"live {n}"}, "message")
        frames += await slow.read(is_type("resumed"))
        replayed = [f for f in frames if f["type"] == "message"]
        assert 0 < len(replayed) < 2 * KEPT
        ids = [m["id"] for m in replayed if m["room"] == "lobby"]
        assert ids == list(range(last["lobby"] + 1, last["lobby"] + len(ids) + 1))  # a prefix
        assert frames[-1] == {
            "type": "resumed",
            "missed": len(replayed),
            "complete": False,
            "reason": "overtaken",
        }
        # Live from the cut on: what was held is left to history; what came after arrives.
        after = await slow.read(is_type("message", text="live 7"))
        assert [f["text"] for f in after] == ["live 6", "live 7"]
        await slow.send({"type": "ping", "ref": "p"})
        assert (await slow.read(is_type("pong")))[-1] == {"type": "pong", "ref": "p"}
        await talker.request({"type": "say", "room": "calm", "text": "still here?"}, "message")
        assert (await slow.read(is_type("message")))[-1]["text"] == "still here?"
        assert server.chat is not None
        assert server.chat.counters.get("slow_disconnects", 0) == 0
        assert server.chat.counters.get("resumes_overtaken") == 1
    finally:
        await server.stop()


@pytest.mark.redis
async def test_a_replay_cut_by_a_redis_stall_ends_incomplete_and_a_later_resume_gets_the_rest() -> (
    None
):
    """Redis stops answering while a slow reader's replay still has pages to read: the replay
    ends `incomplete` with reason `unavailable` (the words clients show: "could not be read
    just now", not "gone"), the connection goes on, and once Redis is back a resume from the
    last message received brings the rest, once each, in order."""
    own = RedisServer().start()  # its own: this test stalls it
    server = await start_server(
        broker=own.url(), msg_rate=1e6, msg_burst=1e6, outbox_limit=64 * 1024
    )
    try:
        rooms = ROOMS[:2]
        a, talker = [await WsClient.open(server.http_port) for _ in range(2)]
        last = await joined_all(a, rooms)
        await joined_all(talker, rooms)
        await cut(a)
        await say_many(talker, rooms, KEPT, WORDS)

        slow = await SlowReader.open(server.http_port)
        await slow.send({"type": "resume", "session": a.welcome["session"], "last": last})
        frames = await slow.read(is_type("message"))  # under way; the reader stops reading
        own.pause()  # the replay's next page cannot be read (after the command timeout)
        try:
            frames += await slow.read(is_type("resumed"))
        finally:
            own.resume()
        replayed = [f for f in frames if f["type"] == "message"]
        assert 0 < len(replayed) < len(rooms) * KEPT
        assert frames[-1] == {
            "type": "resumed",
            "missed": len(replayed),
            "complete": False,
            "reason": "unavailable",
        }
        got: dict[str, list[int]] = {room: [] for room in rooms}
        for message in replayed:
            got[message["room"]].append(message["id"])
        for room, ids in got.items():  # a gapless prefix of each room, in order
            assert ids == list(range(last[room] + 1, last[room] + len(ids) + 1))
        await slow.send({"type": "ping", "ref": "p"})  # the connection goes on
        assert (await slow.read(is_type("pong")))[-1] == {"type": "pong", "ref": "p"}
        await slow.close()

        # Once this node has Redis back (it tells everyone `available`), resuming from what
        # arrived brings the rest of every room.
        assert server.chat is not None
        assert await eventually(lambda: server.chat.broker.healthy, 15.0)  # type: ignore[union-attr]
        seen = {room: ids[-1] if ids else last[room] for room, ids in got.items()}
        _, again = await resume(server.http_port, a.welcome["session"], seen)
        rest = [f for f in again if f["type"] == "message"]
        for room in rooms:
            ids = [m["id"] for m in rest if m["room"] == room]
            assert ids == list(range(seen[room] + 1, last[room] + KEPT + 1))
        assert again[-1]["complete"] is True and again[-1]["missed"] == len(rest)
    finally:
        await server.stop()
        own.resume()
        own.stop()


async def test_an_irc_client_back_after_a_large_backlog_in_four_rooms_gets_it_at_its_pace() -> None:
    server = await start_server(msg_rate=1e6, msg_burst=1e6)
    loop = asyncio.get_running_loop()
    try:
        irc = await IrcClient.connect(server.irc_port, register=False)
        key = await irc.register_for_key("Bob")
        await irc.send_lines("JOIN " + ",".join(f"#{room}" for room in ROOMS))
        await irc.sync()
        await irc.close()
        talker = await WsClient.open(server.http_port)
        await joined_all(talker, ROOMS)
        await say_many(talker, ROOMS, KEPT, WORDS)

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.setblocking(False)
        OPEN_CLIENTS.append(_Closing(sock))  # type: ignore[arg-type]
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", server.irc_port)), WAIT)
        await loop.sock_sendall(sock, f"PASS resume:{key}\r\nNICK x\r\nUSER u 0 * :x\r\n".encode())
        received = b""
        async with asyncio.timeout(READ_FOR):
            while b"Caught up" not in received and b"ERROR" not in received:
                data = await loop.sock_recv(sock, 4096)
                assert data, "closed"
                received += data
                await asyncio.sleep(0.001)
        lines = received.decode().split("\r\n")
        assert not [line for line in lines if line.startswith("ERROR")]
        for room in ROOMS:  # each message once, in order (its first line: long ones are split)
            said = [
                line.split(" :", 1)[1] for line in lines if f" PRIVMSG #{room} :{room} " in line
            ]
            assert [int(text.split()[1]) for text in said] == list(range(KEPT))
        assert any("Caught up: 2000 messages you missed." in line for line in lines)
    finally:
        await server.stop()


class _Closing:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    async def close(self) -> None:
        self.sock.close()
