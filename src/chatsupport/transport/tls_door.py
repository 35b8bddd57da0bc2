"""The door of a TLS port: TLS clients are let in, anyone else is told so in plain text.

A listener made with `ssl=` answers a plain-text client (netcat) with silence: the TLS
handshake waits for a ClientHello that never comes. So the port listens in the clear and
the door looks at the first byte without reading it (MSG_PEEK): a TLS record starts with
0x16 (a handshake), and the connection is upgraded in place (`loop.start_tls`) and handed
to the real protocol; anything else, or nothing within `QUIET_WAIT` (TLS clients speak at
once; people with nc wait to be greeted), gets one plain line saying how to connect, then
the connection closes. Nobody is admitted, named or counted before the handshake is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import cast

log = logging.getLogger("chatsupport.tls")

TLS_HANDSHAKE = 0x16  # the first byte of every TLS ClientHello (a handshake record)
QUIET_WAIT = 2.0  # seconds a silent client is given before it is told this port speaks TLS
LINGER = 5.0  # seconds a turned-away client has to read the line and hang up


class TlsDoor(asyncio.Protocol):
    """One connection to a TLS port, until it is known to speak TLS (then `inner` has it)."""

    def __init__(
        self,
        inner: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext,
        plain_answer: Callable[[str], bytes],
        handshake_timeout: float,
    ) -> None:
        self.inner = inner
        self.context = context
        self.plain_answer = plain_answer  # "host:port" -> the line a plain client gets
        self.handshake_timeout = handshake_timeout
        self.transport: asyncio.Transport | None = None
        self.peek: socket.socket | None = None  # a duplicate of the socket, to look without reading
        self.timer: asyncio.TimerHandle | None = None
        self.peer: asyncio.Protocol | None = None
        self.early: list[bytes] = []  # decrypted bytes that came before the peer was there
        # Raw bytes read before the door could pause reading (uvloop: see `_keep_paused`),
        # until TLS takes the transport over; handed to the handshake, so none is lost.
        self.raw: list[bytes] = []
        self.raw_phase = True
        self.task: asyncio.Task[None] | None = None
        self.turned_away = False
        self.gone = False

    # ---- before the first byte -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not by class under uvloop (`chatsupport serve`): its
        # transports do not derive from asyncio's, so an isinstance check refused them all.
        self.transport = stream = cast(asyncio.Transport, transport)
        raw = stream.get_extra_info("socket")
        if raw is None:  # not a socket we can look at: let TLS decide
            self._upgrade()
            return
        stream.pause_reading()  # the first byte stays in the kernel for the handshake
        self.peek = raw.dup()
        self.peek.setblocking(False)
        loop = asyncio.get_running_loop()
        loop.call_soon(self._keep_paused)
        loop.add_reader(self.peek.fileno(), self._look)
        self.timer = loop.call_later(QUIET_WAIT, self._look)

    def _keep_paused(self) -> None:
        """uvloop starts reading once `connection_made` returns, paused or not: pause again,
        before its next poll, while the door still looks (else the ClientHello is read into
        the door, and the handshake never sees it)."""
        if self.peek is not None and self.transport is not None:
            self.transport.pause_reading()

    def _look(self) -> None:
        """The first byte is there (or the wait is over): TLS, or a plain client."""
        assert self.peek is not None and self.transport is not None
        try:
            first = self.peek.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            first = None  # the quiet wait is over and nothing came
        except OSError:
            first = b""
        self._decide(first)

    def _decide(self, first: bytes | None) -> None:
        """`first`: the first byte, b"" when the client left, None when it said nothing."""
        self._stop_looking()
        assert self.transport is not None
        if first == b"":
            self.transport.abort()  # gone before saying anything
        elif first is not None and first[0] == TLS_HANDSHAKE:
            self._upgrade()
        else:
            self._turn_away()

    def _stop_looking(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.peek is not None:
            asyncio.get_running_loop().remove_reader(self.peek.fileno())
            self.peek.close()
            self.peek = None

    def _turn_away(self) -> None:
        """One plain line, then a graceful close: what the client sent is read and dropped
        until it hangs up (closing with its bytes unread would reset the connection, and the
        line could be lost on the way)."""
        transport = self.transport
        assert transport is not None
        host, port = transport.get_extra_info("sockname")[:2]
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.turned_away = True
        self.raw_phase, self.raw = False, []
        transport.write(self.plain_answer(where))
        transport.write_eof()
        transport.resume_reading()
        self.timer = asyncio.get_running_loop().call_later(LINGER, transport.abort)
        log.info("a plain-text client on the TLS port was told to use TLS")

    # ---- the handshake, then the real protocol ---------------------------------------------
    def _upgrade(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._handshake())

    async def _handshake(self) -> None:
        transport = self.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        starting = asyncio.ensure_future(
            loop.start_tls(
                transport,
                self,
                self.context,
                server_side=True,
                ssl_handshake_timeout=self.handshake_timeout,
            )
        )
        # Runs just after `start_tls` has put its TLS protocol on the transport and before
        # that protocol starts the handshake (both loops schedule `connection_made` next).
        loop.call_soon(self._hand_over_raw)
        try:
            secure = await starting
        except Exception as error:  # a bad or abandoned handshake: nobody was let in
            log.info("TLS handshake failed: %s", type(error).__name__)
            transport.abort()
            return
        if secure is None or self.gone:
            if secure is not None:
                secure.abort()
            return
        peer = self.peer = self.inner()
        secure.set_protocol(peer)
        peer.connection_made(secure)
        early, self.early = self.early, []
        for data in early:
            peer.data_received(data)

    def _hand_over_raw(self) -> None:
        """Give the TLS protocol the ClientHello bytes the door read by accident (uvloop read
        them before `_keep_paused` ran: the connection was accepted with them waiting)."""
        self.raw_phase, raw, self.raw = False, self.raw, []
        if raw:  # after the TLS protocol's `connection_made`, which is scheduled already
            asyncio.get_running_loop().call_soon(self._feed_tls, b"".join(raw))

    def _feed_tls(self, raw: bytes) -> None:
        """Hand `raw` to the TLS protocol as if the transport had just read it (both loops'
        TLS protocols read through the buffered-protocol calls)."""
        if self.transport is None or self.transport.is_closing():
            return
        tls = self.transport.get_protocol()
        # uvloop's TLS protocol is not asyncio's BufferedProtocol by class, only by its calls.
        get_buffer = getattr(tls, "get_buffer", None)
        buffer_updated = getattr(tls, "buffer_updated", None)
        if get_buffer is None or buffer_updated is None:
            log.info("TLS handshake failed: the client's first bytes could not be handed over")
            self.transport.abort()
            return
        rest = memoryview(raw)
        while rest:
            buffer = memoryview(get_buffer(len(rest)))
            size = min(len(buffer), len(rest))
            buffer[:size] = rest[:size]
            buffer_updated(size)
            rest = rest[size:]

    # ---- what arrives while the door still holds the connection ------------------------------
    def data_received(self, data: bytes) -> None:
        if self.raw_phase and not self.turned_away:  # read before TLS took the transport
            self.raw.append(data)
            if self.peek is not None:  # still looking: this is the first byte
                self._decide(data[:1])
            return
        if not self.turned_away:  # decrypted, after the handshake, before `peer` took over
            self.early.append(data)

    def eof_received(self) -> bool | None:
        return None  # close: the client is done (after the handshake, the peer decides)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        with contextlib.suppress(Exception):  # the loop may be closing already
            self._stop_looking()
