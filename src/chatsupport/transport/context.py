"""What every connection handler shares: the core, the settings, the flusher, the codecs."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from ..config import Config
from ..core.chat import Chat
from ..keys import keyed_hash
from .codec import JsonCodec, TextCodec
from .outbox import Flusher, Outbox


@dataclass(slots=True)
class AddressKeys:
    """Keyed hashes of networks and clients: limits and bans work without keeping either.

    The key is derived from the operator's secret (keys.py: the same on every node, never
    in Redis). This root hash stays in this node's memory; bans are shared under period
    hashes of it (keys.AddressSchedule). What is hashed is the network, not the address:
    an IPv6 address counts as its /64 (one household or phone gets a whole /64 and can
    change the rest at will, so per-address limits and bans would be no limit at all),
    and an IPv4 address mapped into IPv6 as that IPv4 address.
    """

    key: bytes = field(repr=False)

    def of(self, address: str) -> str:
        return self._hash(network_of(address))  # never a client's: `client:` is not an address

    def client(self, client_id: str) -> str:
        """The key of the random id a client holds for its session (`/ws?client=`)."""
        return self._hash("client:" + client_id)

    def _hash(self, text: str) -> str:
        return keyed_hash(self.key, text)


def network_of(address: str) -> str:
    """What limits and bans count as one network: an IPv4 address (also when mapped into
    IPv6), an IPv6 /64; anything else (a Unix socket, no address) as it is."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # what `/ws?client=` may be: random, short


@dataclass(slots=True)
class Edge:
    """What every connection handler shares: the core, the settings, the flusher, the codecs."""

    chat: Chat
    config: Config
    flusher: Flusher
    addresses: AddressKeys
    text: TextCodec = field(default_factory=TextCodec)
    json: JsonCodec = field(default_factory=JsonCodec)

    def attach(
        self, transport: asyncio.BaseTransport, on_overflow: Callable[[], None]
    ) -> tuple[asyncio.Transport, Outbox, str]:
        """A new connection's first steps: a bounded outbox, its peer address. (TCP keepalive
        it has from its listener, `keep_alive`: no socket object and no calls here.)"""
        stream = cast(asyncio.Transport, transport)
        outbox = Outbox(stream, self.flusher, self.config.outbox_limit, on_overflow)
        peer = stream.get_extra_info("peername")
        return stream, outbox, str(peer[0]) if peer else ""


LISTEN_BACKLOG = 1024  # a crowd arriving at once (a link shared in a forum) must not be reset


async def listen(
    protocol: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    reuse_port: bool = False,
) -> asyncio.Server:
    """A listening socket for one kind of connection (IRC, HTTP/WebSocket), `tls` or plain:
    the address reusable at once after a restart, and a backlog for a crowd. `reuse_port`:
    several worker processes share the port (`--workers`)."""
    server = await asyncio.get_running_loop().create_server(
        protocol,
        host,
        port,
        ssl=tls,
        reuse_address=True,
        reuse_port=reuse_port or None,
        backlog=LISTEN_BACKLOG,
    )
    return keep_alive(server)


def keep_alive(server: asyncio.Server) -> asyncio.Server:
    """TCP keepalive on every listening socket of `server`: the connections it accepts
    inherit it (Linux copies the listener's socket options), so each needs no socket object
    (~70 B idle, with uvloop) nor four system calls of its own."""
    for sock in server.sockets:
        enable_keepalive(sock)
    return server


def enable_keepalive(
    sock: socket.socket | None, idle: int = 60, interval: int = 15, count: int = 4
) -> None:
    """Let the kernel find dead peers (a quiet but live person still answers these)."""
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", idle),
        ("TCP_KEEPINTVL", interval),
        ("TCP_KEEPCNT", count),
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
