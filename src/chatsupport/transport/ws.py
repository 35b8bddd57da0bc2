"""The WebSocket JSON interface (`GET /ws`), on the HTTP listener.

`websockets`' sans-I/O ServerProtocol parses the HTTP request, the handshake and incoming
frames (and answers pings and closes); this class is only the glue: it routes plain HTTP
requests, decodes each text frame into a typed Request for the core, and writes outgoing
data frames, pre-encoded once per message, through the peer's coalescing outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import cast
from urllib.parse import urlsplit

import msgspec
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from ..core import events as ev
from ..core import requests as rq
from ..core.session import Link
from .context import Edge, enable_keepalive
from .http import Routes, text_response
from .outbox import Outbox

log = logging.getLogger("chatsupport.ws")
# websockets logs request headers (addresses, X-Forwarded-For) and frames (message text) at
# DEBUG: its protocol gets a logger that never goes below WARNING, whatever the app sets.
protocol_log = logging.getLogger("chatsupport.ws.protocol")
protocol_log.setLevel(logging.WARNING)

HARD_FRAME_LIMIT = 1 << 20  # beyond this the protocol closes (1009); below, we answer too_long
_decoder = msgspec.json.Decoder(rq.AnyRequest)


def decode_request(payload: bytes) -> rq.Request | ev.Error:
    """A text frame -> Request, or the error to answer it with (with its ref when readable)."""
    try:
        return _decoder.decode(payload)  # type: ignore[no-any-return]
    except msgspec.DecodeError as error:
        if isinstance(error, msgspec.ValidationError):
            return _classify(payload, str(error))
        return ev.Error(code="bad_json", message="that frame is not valid JSON")


def _classify(payload: bytes, detail: str) -> ev.Error:
    try:
        raw = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        raw = None
    ref = raw.get("ref") if isinstance(raw, dict) else None
    ref = ref if isinstance(ref, str) else None
    if not isinstance(raw, dict):
        return ev.Error(code="bad_request", message="a frame must be a JSON object", ref=ref)
    kind = raw.get("type")
    if not isinstance(kind, str):
        return ev.Error(code="bad_request", message='a frame needs a string "type"', ref=ref)
    if kind not in rq.TYPE_NAMES:
        return ev.Error(code="unknown_type", message=f"unknown type {kind[:40]!r}", ref=ref)
    return ev.Error(code="bad_request", message=f"bad {kind}: {detail}", ref=ref)


class HttpConnection(asyncio.Protocol):
    """One HTTP connection; after a successful upgrade, one WebSocket peer (a Sink)."""

    interface = "json"

    def __init__(self, edge: Edge, routes: Routes) -> None:
        self.edge = edge
        self.routes = routes
        self.protocol = ServerProtocol(max_size=HARD_FRAME_LIMIT, logger=protocol_log)
        self.transport: asyncio.Transport | None = None
        self.outbox: Outbox | None = None
        self.link: Link | None = None
        self.address = ""
        self.inbox: deque[rq.Request | ev.Error] = deque()
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.last_heard = 0.0
        self.pinged = False
        self.ended = False

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        enable_keepalive(transport.get_extra_info("socket"))
        self.outbox = Outbox(
            transport, self.edge.flusher, self.edge.config.outbox_limit, self._too_slow
        )
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else ""
        loop = asyncio.get_running_loop()
        self.last_heard = loop.time()
        self.timer = loop.call_later(self.edge.config.handshake_timeout, self._handshake_expired)

    def data_received(self, data: bytes) -> None:
        self.last_heard = asyncio.get_running_loop().time()
        self.pinged = False
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self._http(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._write_protocol()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._write_protocol()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.link:
            log.info("receive error uid=%s error=%s", self.link.session.uid, type(exc).__name__)
        self.ended = True
        if self.timer:
            self.timer.cancel()
        if self.outbox:
            self.outbox.lost()
        self.wakeup.set()

    def _write_protocol(self) -> None:
        assert self.transport is not None and self.outbox is not None
        for data in self.protocol.data_to_send():
            if data:
                self.outbox.push(data)
            else:
                self.outbox.finish()  # EOF: the protocol is done with this connection
                self.ended = True

    # ---- HTTP ------------------------------------------------------------------------------
    def _http(self, request: Request) -> None:
        path = request.path.partition("?")[0]
        if path != "/ws":
            self.protocol.send_response(self.routes.get(request))
            return
        self.address = self._client_address(request)
        if not self._origin_allowed(request):
            self.edge.chat.count("error_forbidden_origin")
            self.protocol.send_response(text_response(403, "cross-origin WebSocket refused\n"))
            return
        address_key = self.edge.addresses.of(self.address)
        refusal = self.edge.chat.admit(address_key)
        response = self.protocol.accept(request)
        self.protocol.send_response(response)
        if response.status_code != 101:
            if refusal is None:
                self.edge.chat.release(address_key)
            return
        if refusal is not None:
            self.edge.chat.count("connections_refused")
            self._write_protocol()  # the 101 response goes out before the refusal
            self.send(refusal)
            self.send(ev.Bye(reason=refusal.code))
            self.close(refusal.code)
            return
        assert self.timer is not None
        self.timer.cancel()
        self._schedule_keepalive()
        self.task = asyncio.get_running_loop().create_task(self._run(address_key))

    def _origin_allowed(self, request: Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser (terminal client, scripts): nothing to forge
        if origin in self.edge.config.allowed_origins:
            return True
        host = request.headers.get("Host", "")
        return urlsplit(origin).netloc == host and host != ""

    def _client_address(self, request: Request) -> str:
        """The peer address, or X-Forwarded-For's last hop when the peer is a trusted proxy."""
        forwarded = request.headers.get("X-Forwarded-For")
        if forwarded and self.address in self.edge.config.trusted_proxies:
            return forwarded.split(",")[-1].strip()
        return self.address

    def _handshake_expired(self) -> None:
        if self.link is None and self.transport:
            self.transport.abort()

    # ---- frames ----------------------------------------------------------------------------
    def _frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.TEXT:
            if len(frame.data) > self.edge.config.max_frame_bytes:
                self._queue(ev.Error(code="too_long", message="frame too large"))
            else:
                self._queue(decode_request(bytes(frame.data)))
        elif frame.opcode is Opcode.BINARY:
            self._queue(ev.Error(code="bad_request", message="send JSON in text frames"))
        elif frame.opcode is Opcode.CLOSE:
            self.ended = True
            self.wakeup.set()

    def _queue(self, item: rq.Request | ev.Error) -> None:
        self.inbox.append(item)
        self.wakeup.set()

    async def _run(self, address_key: str) -> None:
        chat = self.edge.chat
        resumable = True
        try:
            self.link = await chat.open(self, address_key)
            while not self.ended:
                if not self.inbox:
                    self.wakeup.clear()
                    await self.wakeup.wait()
                    continue
                item = self.inbox.popleft()
                if isinstance(item, ev.Error):
                    chat.fail(self.link, item.code, item.message, item.ref)
                else:
                    await chat.handle(self.link, item)
        except Exception:
            log.exception("error while serving uid=%s", self._uid())
            resumable = False
        finally:
            if self.link:
                await chat.close(self.link, "disconnected", resumable=resumable)
            else:
                chat.release(address_key)  # admitted, never opened
            if self.transport and not self.transport.is_closing():
                self.transport.close()

    # ---- Sink ------------------------------------------------------------------------------
    def send(self, event: ev.Event) -> None:
        if self.outbox is not None and not self.outbox.closed:
            self.outbox.push(self.edge.json.encode(event))

    def close(self, reason: str) -> None:
        """Close after what is queued: a close frame, then the TCP connection."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1000, reason[:100])
        self.ended = True
        if self.outbox:
            for data in self.protocol.data_to_send():
                if data:
                    self.outbox.push(data)
            self.outbox.finish()
        self.wakeup.set()

    # ---- liveness --------------------------------------------------------------------------
    def _schedule_keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.edge.config.ping_interval, self._keepalive)

    def _keepalive(self) -> None:
        """Ping a connection that went quiet; close one that did not answer the last ping."""
        if self.ended or self.transport is None:
            return
        idle = asyncio.get_running_loop().time() - self.last_heard
        if self.pinged and idle >= self.edge.config.ping_interval:
            log.info("no answer to keepalive uid=%s", self._uid())
            self.edge.chat.count("keepalive_timeouts")
            self.transport.abort()
            return
        if idle >= self.edge.config.ping_interval * 0.9 and self.protocol.state is State.OPEN:
            self.protocol.send_ping(b"ka")
            self.pinged = True
            self._write_protocol()
        self._schedule_keepalive()

    def _too_slow(self) -> None:
        log.warning("slow peer disconnected uid=%s", self._uid())
        self.edge.chat.count("slow_disconnects")
        self.ended = True
        assert self.transport is not None
        frame = self.edge.json.encode(ev.Bye(reason="too_slow"))
        self.transport.write(frame)
        self.transport.close()
        asyncio.get_running_loop().call_later(5.0, self.transport.abort)
        self.wakeup.set()

    def _uid(self) -> str:
        return self.link.session.uid if self.link else "-"
