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

from . import loading
from .broker import make_broker
from .config import Config
from .core.chat import Chat
from .core.conversation import Conversation
from .core.feature import Feature
from .core.flood import Flood
from .core.handlers import Everyday
from .core.matching import Matching
from .core.moderation import Moderation
from .core.ports import AddressPeriods, BrokerUnavailable
from .core.reports import Reports
from .core.roles import Roles
from .core.safety import Safety
from .core.session import Session
from .keys import AddressSchedule, operator_secret
from .transport.context import AddressKeys, Edge, keep_alive
from .transport.descriptors import Descriptors
from .transport.irc import start_irc
from .transport.outbox import Flusher
from .transport.tcp import text_port

log = logging.getLogger("chatsupport.server")
LISTEN_BACKLOG = 1024  # a crowd arriving at once (a link shared in a forum) must not be reset


def features(config: Config, periods: AddressPeriods | None = None) -> list[Feature]:
    """What the chat does, in the order the Chat calls each hook. The order matters where
    one feature reads what another wrote: moderation records a message before safety reads
    it, and safety sets the crisis flag before matching moves that seeker ahead. Crisis
    words come before any sanction: safety reads a refused message (muted, slowed, over
    budget) before flood control counts the refusal as a strike. Files (tokens, crisis
    phrases, help lines) are read here, so a broken one stops the start. `periods` turns
    address keys into those bans are shared under (keys.py)."""
    roles = Roles(loading.tokens(config.tokens_file))
    safety = Safety(
        loading.crisis_matcher(config.crisis_phrases_file),
        loading.resources(config.resources_file),
    )
    return [
        Everyday(help_lines=safety.line_names()),  # nobody may pose as a help line
        Conversation(),
        roles,
        Moderation(periods),
        Reports(),
        safety,
        Flood(),
        Matching(),
    ]


def help_page(config: Config, http_url: str) -> str | None:
    """The static help page's address as people reach it, for the netcat greeting: from
    `public_url`, else where HTTP listens (unless that is every interface: no one address)."""
    if config.public_url:
        return config.public_url.rstrip("/") + "/help"
    if config.host in ("", "0.0.0.0", "::"):
        return None
    if ":" in config.host and not config.host.startswith("["):  # an IPv6 address
        http_url = http_url.replace(f"//{config.host}:", f"//[{config.host}]:")
    return f"{http_url}/help"


class ChatServer:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.chat: Chat | None = None
        self.edge: Edge | None = None
        self.listeners: list[asyncio.Server] = []
        self.urls: dict[str, str] = {}  # "tcp" / "http" / "irc" / "ircs" / "metrics" -> where
        self._ircs: asyncio.Server | None = None  # the IRC-over-TLS listener, if any
        self._metrics: asyncio.Server | None = None  # the /metrics listener, if any
        self._ticker: asyncio.Task[None] | None = None
        self.descriptors: Descriptors | None = None
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

    @property
    def irc_port(self) -> int:
        return self._port(2)

    @property
    def irc_tls_port(self) -> int | None:
        return self._port(self.listeners.index(self._ircs)) if self._ircs else None

    @property
    def metrics_port(self) -> int:
        """The /metrics listener's port (only with `metrics_port` set)."""
        assert self._metrics is not None, "no /metrics listener: metrics_port is not set"
        return self._port(self.listeners.index(self._metrics))

    def _port(self, index: int) -> int:
        sockets = self.listeners[index].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def shares_ports(self) -> bool:
        """One of `--workers N` processes: the public ports are shared with the others
        (SO_REUSEPORT, the kernel spreads connections); /metrics is each worker's own."""
        return self.config.workers > 1

    @property
    def node(self) -> str:
        """This process's id in a shared broker ("" in memory)."""
        return str(getattr(self.chat.broker, "node", "")) if self.chat else ""

    async def forget_node(self, node: str) -> None:
        """`node` is known to be dead (a worker its parent saw die): its people leave at once,
        rather than when its lease runs out."""
        if self.chat is None:
            return
        from .broker.redis import RedisBroker  # only a shared broker has other nodes

        if isinstance(self.chat.broker, RedisBroker):
            await self.chat.broker.forget_node(node)

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    async def start(self) -> None:
        import time

        config = self.config
        if config.irc_tls_port is not None and not config.tls_cert:
            raise ValueError("--irc-tls-port needs --tls-cert (and --tls-key)")
        loop = asyncio.get_running_loop()
        secret = operator_secret(config)  # never stored in the broker: every node has it
        schedule = AddressSchedule(secret, config.address_key_rotation, time.time)
        broker = make_broker(
            config.broker,
            retention_seconds=config.retention_seconds,
            retention_messages=config.retention_messages,
            wallclock=time.time,
            secret=secret,
        )
        self.chat = Chat(config, broker, features(config, schedule))
        await self.chat.start()
        addresses = AddressKeys(schedule.root_key)
        flusher = Flusher(loop)
        # A room's events of one turn go out as one batch, rendered once for its members.
        flusher.sealer = self.chat.seal
        self.chat.batch_with(flusher.batched)
        self.edge = Edge(self.chat, config, flusher, addresses)
        tls = self.ssl_context()
        edge = self.edge
        tcp = keep_alive(
            await loop.create_server(
                text_port(edge, tls),  # with TLS, a plain client is told so (not silence)
                config.host,
                config.tcp_port,
                reuse_address=True,
                reuse_port=self.shares_ports or None,
                backlog=LISTEN_BACKLOG,
            )
        )
        self.listeners.append(tcp)
        scheme = "tcps" if tls else "tcp"
        self.urls["tcp"] = f"{scheme}://{config.host}:{self.tcp_port}"
        from .transport.web_server import start_http  # the WebSocket/HTTP edge

        http = await start_http(edge, config.host, config.http_port, tls, self.shares_ports)
        self.listeners.append(http)
        self.urls["http"] = f"{'https' if tls else 'http'}://{config.host}:{self.http_port}"
        edge.text.help_url = help_page(config, self.urls["http"])
        await self._start_irc(edge, tls)
        if config.metrics_port is not None:
            from .transport.metrics import start_metrics

            self._metrics = await start_metrics(self.chat, config.metrics_host, config.metrics_port)
            self.listeners.append(self._metrics)
            self.urls["metrics"] = f"http://{config.metrics_host}:{self.metrics_port}/metrics"
        self.descriptors = Descriptors(loop)
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

    async def _start_irc(self, edge: Edge, tls: ssl.SSLContext | None) -> None:
        """IRC beside the others: plain on --irc-port, TLS on --irc-tls-port if asked for."""
        config = self.config
        share = self.shares_ports
        irc, shared = await start_irc(edge, config.host, config.irc_port, None, reuse_port=share)
        self.listeners.append(irc)
        self.urls["irc"] = f"irc://{config.host}:{self.irc_port}"
        if config.irc_tls_port is not None and tls is not None:
            self._ircs, _ = await start_irc(
                edge, config.host, config.irc_tls_port, tls, shared, reuse_port=share
            )
            self.listeners.append(self._ircs)
            self.urls["ircs"] = f"ircs://{config.host}:{self.irc_tls_port}"

    async def _tick(self) -> None:
        """Housekeeping once a second. A failure is logged once, when it starts (Redis away
        is said by the broker already: one line, no traceback), and once when it ends;
        not every second in between."""
        assert self.chat is not None
        failing = False
        while not self._stopping:
            await asyncio.sleep(1.0)
            try:
                await self.chat.tick()
            except BrokerUnavailable:
                if not failing:
                    log.warning("housekeeping waits for the broker")
                failing = True
            except Exception:
                if not failing:
                    log.exception("housekeeping failed (said once until it works again)")
                failing = True
            else:
                if failing:
                    log.info("housekeeping works again")
                failing = False
            if self.descriptors is not None:
                self.descriptors.check(len(self.chat.links))

    def broadcast(self, text: str) -> None:
        """Send a server announcement to every connected peer."""
        if self.chat:
            self.chat.broadcast(text)

    async def stop(self, reason: str = "server_shutdown") -> None:
        """Say goodbye, close every connection, stop listening."""
        for listener in self.listeners:
            listener.close()
        self._stopping = True
        if self.descriptors is not None:
            self.descriptors.close(asyncio.get_running_loop())
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
        self._ircs = self._metrics = None
        log.info("stopped")
