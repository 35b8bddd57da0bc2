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
        self._stop_looking()
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
        try:
            secure = await loop.start_tls(
                transport,
                self,
                self.context,
                server_side=True,
                ssl_handshake_timeout=self.handshake_timeout,
            )
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

    # ---- what arrives while the door still holds the connection ------------------------------
    def data_received(self, data: bytes) -> None:
        if not self.turned_away:  # decrypted, after the handshake, before `peer` took over
            self.early.append(data)

    def eof_received(self) -> bool | None:
        return None  # close: the client is done (after the handshake, the peer decides)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        with contextlib.suppress(Exception):  # the loop may be closing already
            self._stop_looking()
