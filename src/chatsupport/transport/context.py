"""What every connection handler shares: the core, the settings, the flusher, the codecs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from ..config import Config
from ..core.chat import Chat
from .codec import JsonCodec, TextCodec
from .outbox import Flusher, Outbox


@dataclass(slots=True)
class AddressKeys:
    """Keyed hashes of network addresses: limits and bans work without keeping addresses.

    The key is derived from the operator's secret (keys.py: the same on every node, never
    in Redis). This root hash stays in this node's memory; bans are shared under period
    hashes of it (keys.AddressSchedule).
    """

    key: bytes = field(repr=False)

    def of(self, address: str) -> str:
        return hmac.new(self.key, address.encode(), hashlib.sha256).hexdigest()[:32]


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
        """A new connection's first steps: keepalive on, a bounded outbox, its peer address."""
        stream = cast(asyncio.Transport, transport)
        enable_keepalive(stream.get_extra_info("socket"))
        outbox = Outbox(stream, self.flusher, self.config.outbox_limit, on_overflow)
        peer = stream.get_extra_info("peername")
        return stream, outbox, str(peer[0]) if peer else ""


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
