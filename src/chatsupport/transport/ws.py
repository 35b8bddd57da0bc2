"""The WebSocket JSON interface (`GET /ws`), on the HTTP listener.

`websockets`' sans-I/O ServerProtocol parses the HTTP request, the handshake and incoming
frames (and answers pings and closes); this class is only the glue: it hands plain HTTP
requests to the routes it was given (transport/http.py, composed in web_server.py), decodes
each text frame into a typed Request for the core, and writes outgoing data frames,
pre-encoded once per message, through the peer's coalescing outbox. The connection's life
(admit, open, one request at a time, close) is `driver.Peer`'s; the core answers a peer
over its budget with `rate_limited` (not paced), echoes its messages, and keeps its
session for a resume.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.exceptions import InvalidMessage
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol

from ..config import Config
from ..core import events as ev
from ..core import requests as rq
from ..core.batch import Batch
from .context import CLIENT_ID, Edge
from .driver import Failure, Peer
from .http import SECURITY_HEADERS, text_response
from .jsonsyntax import NOT_UTF8, is_utf8, json_problem

log = logging.getLogger("chatsupport.ws")
SHARED_ID = uuid.UUID(int=0)  # websockets' log id of every connection (_forget_handshake)
# websockets logs request headers (addresses, X-Forwarded-For) and frames (message text) at
# DEBUG: its protocol gets a logger that never goes below WARNING, whatever the app sets.
protocol_log = logging.getLogger("chatsupport.ws.protocol")
protocol_log.setLevel(logging.WARNING)

HARD_FRAME_LIMIT = 1 << 20  # beyond this the protocol closes (1009); below, we answer too_long
_decoder = msgspec.json.Decoder(rq.AnyRequest)
_UTF8 = codecs.getincrementaldecoder("utf-8")
# permessage-deflate (RFC 7692), offered when `ws_deflate` is on. `server_no_context_takeover`:
# each outgoing message is compressed on its own, so one compressed frame serves every
# recipient (transport/codec.py). `client_no_context_takeover` is asked of every client
# (RFC 7692 §7.1.1.2 lets the server): no connection keeps a 32 KiB inflate window between
# messages, so an idle peer costs what it did without compression.
DEFLATE = ServerPerMessageDeflateFactory(
    server_no_context_takeover=True, client_no_context_takeover=True
)


class _RefOnly(msgspec.Struct):
    ref: str | None = None


_ref_decoder = msgspec.json.Decoder(_RefOnly)


def ref_of(payload: bytes) -> str | None:
    """The `ref` of a frame we refuse as a whole (too long, binary), when it is readable."""
    try:
        return _ref_decoder.decode(payload).ref
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def decode_request(payload: bytes) -> rq.Request | ev.Error:
    """A text frame -> Request, or the error to answer it with (with its ref when readable).

    Anything that is not complete, valid JSON is `bad_json`; valid JSON of the wrong shape is
    `bad_request` (or `unknown_type`).
    """
    try:
        # msgspec < 0.19 types decode() of a union as Any, later versions precisely: a typed
        # name reads the same on both.
        request: rq.Request = _decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as error:
        # Bad UTF-8 in a string raises UnicodeDecodeError, deep nesting RecursionError.
        detail = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        return _classify(payload, detail)
    if not is_utf8(payload):  # e.g. in a field msgspec skipped without reading it
        return ev.Error(code="bad_json", message=NOT_UTF8)
    return request


def _classify(payload: bytes, detail: str) -> ev.Error:
    # The typed decoder may object to the shape before it sees the frame is cut short
    # (`[1, 2`: "Expected `object`, got `array`"), so the syntax is judged on its own first.
    problem = json_problem(payload)
    if problem is not None:
        return ev.Error(code="bad_json", message=problem)
    try:
        raw = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        # Valid JSON that Python cannot hold (1e400) or follow (nested thousands deep).
        return ev.Error(code="bad_request", message=f"bad frame: {detail}", ref=ref_of(payload))
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


def _client_id(params: dict[str, list[str]]) -> str:
    """`/ws?client=ID`: the random id the page or terminal client keeps for its session (a
    malformed one is ignored: the person is then known by their session alone)."""
    value = params.get("client", [""])[0]
    return value if CLIENT_ID.match(value) else ""


class _ServerProtocol(ServerProtocol):
    """websockets' sans-I/O server, two points closer to RFC 6455: its handshake refusals
    (400, 426, 431, ...) carry our security headers, and a close frame in the middle of a
    fragmented message closes normally (a control frame may come between fragments, §5.4;
    the unfinished message is dropped) instead of failing with 1002."""

    def reject(self, status: int, text: str) -> Response:
        response = super().reject(status, text)
        for name, value in SECURITY_HEADERS:
            response.headers[name] = value
        return response

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE:
            self.current_size = None  # the unfinished message is abandoned, not an error
        super().recv_frame(frame)


class HttpConnection(Peer):
    """One HTTP connection; after a successful upgrade, one WebSocket peer (a Sink)."""

    interface = "json"
    echoes_own = True  # every client sees one order, its own messages included
    can_resume = True
    shares = True  # a room's batch is framed once for all (`send_batch`)
    log = log
    __slots__ = (
        "address",
        "deflate",
        "first_frame",
        "keepalive",
        "last_heard",
        "partial",
        "partial_opcode",
        "partial_text",
        "pinged",
        "protocol",
        "respond",
        "responded",
    )

    def __init__(
        self,
        edge: Edge,
        respond: Callable[[Request, str], Response],
        keepalive: Keepalive,
    ) -> None:
        super().__init__(edge)
        self.respond = respond  # plain HTTP requests (not `/ws`)
        self.keepalive = keepalive  # the listener's, shared
        limit = max(HARD_FRAME_LIMIT, 2 * edge.config.max_frame_bytes)
        offer = [DEFLATE] if edge.config.ws_deflate else None
        # max_size bounds a message after decompression too: no zip bombs (1009).
        self.protocol = _ServerProtocol(max_size=limit, extensions=offer, logger=protocol_log)
        self.deflate = False  # permessage-deflate agreed: send the compressed frames
        self.address = ""
        self.first_frame: asyncio.Future[None] | None = None  # `/ws?resume` waits for it
        self.partial: bytearray | None = None  # a fragmented message being reassembled
        self.partial_opcode = Opcode.TEXT
        # A fragmented text message is checked as UTF-8 fragment by fragment (RFC 6455 §8.1:
        # fail fast); one decoder while such a message is under way, none otherwise.
        self.partial_text: codecs.IncrementalDecoder | None = None
        self.responded = False
        self.last_heard = 0.0
        self.pinged = 0.0  # loop time of the keepalive ping not answered yet; 0: none

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.address = self.attach(transport)
        loop = asyncio.get_running_loop()
        self.last_heard = loop.time()
        self.timer = loop.call_later(self.edge.config.handshake_timeout, self._handshake_expired)

    def data_received(self, data: bytes) -> None:
        self.last_heard = asyncio.get_running_loop().time()
        self.pinged = 0.0
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self.responded = True
                self._http(event)
            elif isinstance(event, Frame) and not self.ended:  # nothing after a failure
                self._frame(event)
        if isinstance(self.protocol.handshake_exc, InvalidMessage) and not self.responded:
            # Not an HTTP request we can parse: websockets closes silently; we say why.
            self.responded = True
            assert self.outbox is not None
            self.outbox.push(text_response(400, "bad HTTP request\n").serialize())
        self._write_protocol()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._write_protocol()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.keepalive.discard(self)
        self._heard_first()

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
        path, _, query = request.path.partition("?")
        if path != "/ws" or request.method != "GET":
            self.protocol.send_response(self.respond(request, self.address))
            return
        self.address = self._client_address(request)
        if not self._origin_allowed(request):
            self.edge.chat.count("error_forbidden_origin")
            self.protocol.send_response(text_response(403, "cross-origin WebSocket refused\n"))
            return
        response = self.protocol.accept(request)
        self.protocol.send_response(response)
        if response.status_code != 101:
            return
        self._write_protocol()  # the 101 goes out before any frame we queue
        self.deflate = any(isinstance(e, PerMessageDeflate) for e in self.protocol.extensions)
        self._forget_handshake()
        params = parse_qs(query, keep_blank_values=True)
        if not self.admit(self.address, _client_id(params)):  # only real upgrades take a slot
            return
        assert self.timer is not None
        self.timer.cancel()
        self.timer = None
        self.keepalive.add(self)
        if "resume" in params:
            self.first_frame = asyncio.get_running_loop().create_future()
        self.open()

    def _forget_handshake(self) -> None:
        """Restart the protocol's parser now that the handshake is over.

        websockets' parser generator keeps the handshake request (all its headers) alive as
        a local for the whole life of the connection: about 1.5 KB per idle peer. Once the
        state is OPEN, `parse()` starts straight at frames, so a fresh one is equivalent —
        provided no frame bytes arrived yet (clients wait for the 101; if not, keep it).
        The fresh one is the base class's frame parser: the server's own `parse` is only the
        handshake and then `yield from` it, a second generator (~250 B) for nothing.

        The connection's `id` (a UUID, ~100 B) is only for websockets' logs, which name
        nobody here (privacy): one shared id stands for every connection.
        """
        protocol = self.protocol
        protocol.id = SHARED_ID
        if protocol.state is State.OPEN and not protocol.reader.buffer:
            protocol.parser = Protocol.parse(protocol)
            next(protocol.parser)

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
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                data = bytes(frame.data)
                if opcode is Opcode.TEXT and not is_utf8(data):
                    self._not_utf8()
                    return
                self._message(opcode, data)
            else:  # the protocol bounds the whole message (max_size), so this buffer too
                self.partial, self.partial_opcode = bytearray(frame.data), opcode
                if opcode is Opcode.TEXT:
                    self.partial_text = _UTF8()
                    self._text_fragment(frame)
        elif opcode is Opcode.CONT and self.partial is not None:
            self.partial += frame.data
            if not self._text_fragment(frame):
                return
            if frame.fin:
                data, self.partial, self.partial_text = bytes(self.partial), None, None
                self._message(self.partial_opcode, data)
        elif opcode is Opcode.CLOSE:
            self.partial = self.partial_text = None
            self.ended = True

    def _text_fragment(self, frame: Frame) -> bool:
        """Whether a text message's fragments are UTF-8 so far (else the connection fails)."""
        decoder = self.partial_text
        if decoder is None:
            return True
        try:
            decoder.decode(frame.data, final=frame.fin)
        except UnicodeDecodeError:
            self._not_utf8()
            return False
        return True

    def _not_utf8(self) -> None:
        """RFC 6455 §8.1: a text message that is not UTF-8 fails the connection (1007)."""
        self.partial = self.partial_text = None
        self.edge.chat.count("ws_invalid_utf8")
        self.protocol.fail(CloseCode.INVALID_DATA, "text messages must be UTF-8")
        self.ended = True

    def _message(self, opcode: Opcode, data: bytes) -> None:
        if opcode is Opcode.BINARY:
            self._queue(
                ev.Error(code="bad_request", message="send JSON in text frames", ref=ref_of(data))
            )
        elif len(data) > self.edge.config.max_frame_bytes:
            limit = self.edge.config.max_frame_bytes
            message = f"frames are at most {limit} bytes"
            self._queue(ev.Error(code="too_long", message=message, ref=ref_of(data)))
        else:
            self._queue(decode_request(data))

    def _queue(self, item: rq.Request | ev.Error) -> None:
        self.take(item)
        self._heard_first()
        self.kick()

    # ---- resume first ----------------------------------------------------------------------
    def _heard_first(self) -> None:
        if self.first_frame is not None and not self.first_frame.done():
            self.first_frame.set_result(None)

    async def resume_token(self) -> str | None:
        """`/ws?resume`: the client's first frame is its `resume`. Waiting for it (bounded)
        before making anyone up means the person comes back as themselves, with no fresh
        identity shown joining and leaving. Any other first frame: a fresh identity."""
        first_frame = self.first_frame
        if first_frame is None:
            return None  # plain `/ws`: a fresh identity at once
        if not self.inbox:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.edge.config.handshake_timeout):
                    await first_frame
        self.first_frame = None
        first = self.inbox[0] if self.inbox else None
        return first.session if isinstance(first, rq.Resume) else None

    # ---- Sink ------------------------------------------------------------------------------
    def send(self, event: ev.Event) -> None:
        if self.outbox is not None and not self.outbox.closed:
            self.outbox.push(self.edge.json.encode(event, self.deflate))

    def send_batch(self, batch: Batch) -> None:
        """A room's events of this turn: their frames, joined once for every member they
        all go to (once more for those that agreed to compression)."""
        outbox = self.outbox
        if outbox is None or outbox.closed:
            return
        deflate = self.deflate
        data = batch.cache.get(deflate)
        if data is None:
            encode = self.edge.json.encode
            data = batch.cache[deflate] = b"".join([encode(e, deflate) for e, *_ in batch.events])
        outbox.put(data)

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

    # ---- endings ---------------------------------------------------------------------------
    def refused(self, refusal: ev.Error) -> None:
        self.send(refusal)
        self.send(ev.Bye(reason=refusal.code))
        self.close(refusal.code)

    def fail(self, why: Failure) -> None:
        if why == "unavailable":
            self.send(ev.Error(code="unavailable", message="the chat is unavailable; try later"))
            self.close("unavailable")
        else:
            self.close("error")

    def too_slow(self) -> None:
        """A last `bye` and a close frame, written past the outbox (it overflowed)."""
        assert self.transport is not None
        self.transport.write(self.edge.json.encode(ev.Bye(reason="too_slow"), self.deflate))
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1013, "too_slow")  # 1013: try again later
            for data in self.protocol.data_to_send():
                if data:
                    self.transport.write(data)
        self.transport.close()
        # A peer that reads nothing would keep the socket forever: cut it after a while. The
        # peer's one timer, so that a connection gone before then cancels it (connection_lost).
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(10.0, self.transport.abort)

    # ---- liveness --------------------------------------------------------------------------
    def check_alive(self, now: float) -> bool:
        """Ping a connection quiet for `ping_interval`; close it if nothing (not even the pong)
        arrives within `ping_timeout`. Any incoming byte counts as an answer. False: no
        longer watched (ended, or closed here)."""
        if self.ended or self.transport is None:
            return False
        config = self.edge.config
        if self.pinged:  # still set: nothing heard since the ping went out
            if now - self.pinged < config.ping_timeout:
                return True
            log.info("no answer to keepalive uid=%s", self.uid)
            self.edge.chat.count("keepalive_timeouts")
            self.transport.abort()
            return False
        if now - self.last_heard < config.ping_interval or self.protocol.state is not State.OPEN:
            return True
        self.protocol.send_ping(b"ka")
        self.pinged = now
        self._write_protocol()
        return True


class Keepalive:
    """The keepalive of every open WebSocket of a listener: one timer sweeping them all
    every quarter of the shorter of `ping_interval` and `ping_timeout` (so a ping goes out
    after 1 to 1.25 intervals of silence, and a silent peer is cut 1 to 1.25 timeouts
    after it), instead of a timer per connection (~600 B each, idle)."""

    __slots__ = ("config", "peers", "timer")

    def __init__(self, config: Config) -> None:
        self.config = config
        self.peers: set[HttpConnection] = set()
        self.timer: asyncio.TimerHandle | None = None

    @property
    def every(self) -> float:
        return max(0.01, min(self.config.ping_interval, self.config.ping_timeout) / 4)

    def add(self, peer: HttpConnection) -> None:
        self.peers.add(peer)
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.every, self.sweep)

    def discard(self, peer: HttpConnection) -> None:
        self.peers.discard(peer)
        if not self.peers and self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now, interval = loop.time(), self.config.ping_interval
        done = [
            peer
            for peer in list(self.peers)  # closing one may run connection_lost: a copy
            if (peer.pinged or now - peer.last_heard >= interval or peer.ended)
            and not peer.check_alive(now)
        ]
        self.peers.difference_update(done)
        self.timer = loop.call_later(self.every, self.sweep) if self.peers else None
