"""ChatServer: the Python API, and the one asyncio process that holds every listener.

server = ChatServer(Config(tcp_port=0, http_port=0))
await server.start()
server.broadcast("maintenance at noon")
await server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping

from .broker import make_broker
from .config import Config
from .core.chat import Chat
from .core.feature import Feature
from .core.flood import Flood
from .core.handlers import Everyday
from .core.matching import Matching
from .core.moderation import Moderation
from .core.reports import Reports
from .core.roles import Roles, load_tokens
from .core.safety import Safety
from .core.session import Session
from .transport.context import AddressKeys, Edge
from .transport.outbox import Flusher
from .transport.tcp import TextPeer

log = logging.getLogger("chatsupport.server")
LISTEN_BACKLOG = 1024  # a crowd arriving at once (a link shared in a forum) must not be reset


def features(config: Config) -> list[Feature]:
    """What the chat does, in the order the Chat calls each hook. The order matters where
    one feature reads what another wrote: moderation records a message before safety reads
    it, and safety sets the crisis flag before matching moves that seeker ahead. Files
    (tokens, crisis phrases, help lines) are read here, so a broken one stops the start."""
    roles, safety = Roles(load_tokens(config.tokens_file)), Safety.load(config)
    everyday = Everyday(help_lines=safety.line_names())
    return [everyday, roles, Moderation(), Flood(), Reports(), safety, Matching()]


class ChatServer:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.chat: Chat | None = None
        self.edge: Edge | None = None
        self.listeners: list[asyncio.Server] = []
        self.urls: dict[str, str] = {}  # "tcp" / "http" -> where it listens
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = False  # the ticker's own way out: redis-py can swallow a cancel

    @property
    def peers(self) -> Mapping[str, Session]:
        """Connected peers on this node, uid -> session (read-only)."""
        return self.chat.peers if self.chat else {}

    @property
    def tcp_port(self) -> int:
        return self._port(0)

    @property
    def http_port(self) -> int:
        return self._port(1)

    def _port(self, index: int) -> int:
        sockets = self.listeners[index].sockets
        return int(sockets[0].getsockname()[1])

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    async def start(self) -> None:
        import time

        config = self.config
        loop = asyncio.get_running_loop()
        broker = make_broker(
            config.broker,
            retention_seconds=config.retention_seconds,
            retention_messages=config.retention_messages,
            wallclock=time.time,
        )
        self.chat = Chat(config, broker, features(config))
        await self.chat.start()
        address_key = await broker.shared_secret("address")  # one key for every node
        self.edge = Edge(self.chat, config, Flusher(loop), AddressKeys(address_key))
        tls = self.ssl_context()
        edge = self.edge
        tcp = await loop.create_server(
            lambda: TextPeer(edge),
            config.host,
            config.tcp_port,
            ssl=tls,
            reuse_address=True,
            backlog=LISTEN_BACKLOG,
        )
        self.listeners.append(tcp)
        scheme = "tcps" if tls else "tcp"
        self.urls["tcp"] = f"{scheme}://{config.host}:{self.tcp_port}"
        from .transport.web_server import start_http  # the WebSocket/HTTP edge

        http = await start_http(edge, config.host, config.http_port, tls)
        self.listeners.append(http)
        self.urls["http"] = f"{'https' if tls else 'http'}://{config.host}:{self.http_port}"
        self._ticker = loop.create_task(self._tick())
        self._heartbeat()

    def _heartbeat(self) -> None:
        """Every `Stalls.interval`: a late beat means the loop was held up (the host stopped
        the process, a GC pause, a blocked loop); the core then forgives what was read in a
        heap afterwards (docs/protocol.md, "Budgets")."""
        if self._stopping or self.chat is None:
            return
        stalled = self.chat.stalls.beat(self.chat.clock())
        if stalled > 0:
            self.chat.count("loop_stalls")
            if stalled >= 1.0:
                log.warning("the event loop was held up for %.1f s", stalled)
        loop = asyncio.get_running_loop()
        loop.call_later(self.chat.stalls.interval, self._heartbeat)

    async def _tick(self) -> None:
        assert self.chat is not None
        while not self._stopping:
            await asyncio.sleep(1.0)
            try:
                await self.chat.tick()
            except Exception:
                log.exception("housekeeping failed")

    def broadcast(self, text: str) -> None:
        """Send a server announcement to every connected peer."""
        if self.chat:
            self.chat.broadcast(text)

    async def stop(self, reason: str = "server_shutdown") -> None:
        """Say goodbye, close every connection, stop listening."""
        for listener in self.listeners:
            listener.close()
        self._stopping = True
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self.chat:
            await self.chat.stop(reason)
        for listener in self.listeners:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(listener.wait_closed(), 5.0)
        self.listeners.clear()
        log.info("stopped")
