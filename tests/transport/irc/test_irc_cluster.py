"""The IRC interface across nodes sharing Redis: rooms, order, history and coming back."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from chatsupport import ChatServer
from chatsupport.core.chat import hash_token
from chatsupport.transport.irc import SEEN

from ...helpers import WAIT, TextClient, WsClient, start_server
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
        irc, key = await bob_reads_on_a(a, b, tcp, "seen on a")
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


async def test_back_on_another_node_while_the_dead_connection_is_still_open(url: str) -> None:
    """The network went and the client came back through another node before the first
    noticed: that node had recorded what the client read (while it read), so the replay
    starts after it: not from when Bob came in, and nothing unread is lost."""
    async with nodes(url) as (a, b):
        tcp = await TextClient.open(b.tcp_port)
        irc, key = await bob_reads_on_a(a, b, tcp, "one")
        await tcp.send("two, never read")
        await irc.expect("PRIVMSG")  # written to a's connection (read here only to know it)
        back = await IrcClient.connect(b.irc_port, register=False)
        await back.send_lines(f"PASS resume:{key}", "NICK Bob", "USER u 0 * :x")
        # (the same session: its new name reaches the shared record at a's next tick)
        assert "Welcome back" in (await back.expect("NOTICE")).params[1]
        replayed = await back.expect("PRIVMSG")
        assert replayed.params == ["#lobby", "two, never read"]
        assert "Caught up: 1 message you missed" in (await back.expect("NOTICE")).params[1]
        assert await irc.closed()  # a let the old connection go


async def bob_reads_on_a(
    a: ChatServer, b: ChatServer, tcp: TextClient, text: str
) -> tuple[IrcClient, str]:
    """Bob on a's IRC port reads `text`, the room's first message, said on b; returned once
    a has recorded that he read it (while he reads, as he could come back through b), with
    his resume key."""
    irc = await IrcClient.connect(a.irc_port, register=False)
    key = await irc.register_for_key("Bob")
    await tcp.send(text)
    await irc.expect("PRIVMSG", "#lobby", text)
    await irc.until_confirmed()
    assert b.chat is not None
    for _ in range(int(WAIT / 0.02)):
        if await b.chat.broker.get_flag(SEEN, hash_token(key)) == '{"lobby":1}':
            return irc, key
        await asyncio.sleep(0.02)
    raise AssertionError("a never recorded what Bob read")
