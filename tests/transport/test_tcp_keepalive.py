"""TCP keepalive is set on the listening sockets and inherited by every accepted connection
(text, WebSocket, IRC): the kernel still finds dead peers, with nothing per connection."""

from __future__ import annotations

import socket
from typing import cast

from chatsupport.transport.driver import Peer

from ..helpers import TextClient, WsClient, eventually, start_server
from ..ircraw import IrcClient


async def test_every_accepted_connection_has_tcp_keepalive() -> None:
    server = await start_server()
    try:
        text = await TextClient.open(server.tcp_port)
        ws = await WsClient.open(server.http_port)
        irc = await IrcClient.connect(server.irc_port)
        assert server.chat is not None
        chat = server.chat
        assert await eventually(lambda: len(chat.links) == 3)
        for link in chat.links:
            transport = cast(Peer, link.sink).transport
            assert transport is not None
            sock = transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            if hasattr(socket, "TCP_KEEPIDLE"):
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
        for client in (text, ws, irc):
            await client.close()
    finally:
        await server.stop()
