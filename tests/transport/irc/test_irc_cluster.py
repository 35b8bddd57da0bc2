"""The IRC interface across nodes sharing Redis: rooms, order, history and coming back."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from chatsupport import ChatServer

from ...helpers import TextClient, WsClient, start_server
from ...ircraw import IrcClient
from ...redis_server import RedisServer, delete_prefix, redis_server_fixture

pytestmark = pytest.mark.redis

redis_server = pytest.fixture(scope="session")(redis_server_fixture)


@pytest.fixture
def url(redis_server: RedisServer) -> Iterator[str]:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    yield redis_server.url(prefix)
    delete_prefix(redis_server, prefix)


@contextlib.asynccontextmanager
async def nodes(url: str, **overrides: Any) -> AsyncIterator[list[ChatServer]]:
    servers: list[ChatServer] = []
    try:
        for _ in range(2):
            servers.append(await start_server(broker=url, **overrides))
        yield servers
    finally:
        for server in servers:
            await server.stop()


async def test_irc_on_one_node_netcat_and_websocket_on_the_other(url: str) -> None:
    async with nodes(url) as (a, b):
        irc = await IrcClient.connect(a.irc_port, "Bob", caps="message-tags echo-message")
        tcp = await TextClient.open(b.tcp_port)
        ws = await WsClient.open(b.http_port)
        await irc.expect("JOIN", "#lobby")  # the netcat peer, from the other node
        await irc.send_lines("PRIVMSG #lobby :across nodes")
        echo = await irc.expect("PRIVMSG", "#lobby", "across nodes")
        said = await ws.expect("message", text="across nodes")
        assert echo.tags["msgid"] == f"lobby.{said['id']}"  # one order, the same ids
        assert await tcp.expect(lambda s: "across" in s) == "<Bob> across nodes"
        await tcp.send("back from b")
        got = await irc.expect("PRIVMSG", "#lobby", "back from b")
        assert got.tags["msgid"] == f"lobby.{said['id'] + 1}"


async def test_history_and_coming_back_on_another_node(url: str) -> None:
    async with nodes(url) as (a, b):
        tcp = await TextClient.open(b.tcp_port)
        irc = await IrcClient.connect(a.irc_port, register=False)
        key = await irc.register_for_key("Bob")
        await tcp.send("seen on a")
        await irc.expect("PRIVMSG", "#lobby", "seen on a")
        await irc.until_confirmed()  # the server knows "seen on a" was read
        await irc.close()
        await tcp.send("missed while away")
        back = await IrcClient.connect(b.irc_port, register=False)
        await back.send_lines(f"PASS resume:{key}", "NICK Bob", "USER u 0 * :x")
        assert (await back.expect("001")).params[0] == "Bob"
        replayed = await back.expect("PRIVMSG")
        assert replayed.params == ["#lobby", "missed while away"]  # from where a left off
        assert "Caught up: 1 message you missed" in (await back.expect("NOTICE")).params[1]
        await back.send_lines("CAP REQ :batch draft/chathistory")
        await back.expect("CAP")
        await back.send_lines("CHATHISTORY LATEST #lobby * 10")
        await back.expect("BATCH")
        history = []
        while (line := await back.read()).command == "PRIVMSG":
            history.append(line.params[1])
        assert history == ["seen on a", "missed while away"]
