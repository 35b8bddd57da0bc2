"""A WebSocket client written from RFC 6455 alone (no library), for tests of the server's
conformance: it sends any bytes at all (bad UTF-8, a message cut at every byte, reserved
bits, a close between fragments) and reads the server's frames exactly as they arrive,
inflating them itself when permessage-deflate was agreed (RFC 7692)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import zlib
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from .helpers import OPEN_CLIENTS, WAIT

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


@dataclass(frozen=True)
class Received:
    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes
    size: int  # bytes on the wire, header included

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False, rsv: int = 0
) -> bytes:
    """One client frame (masked, as a client must)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (rsv << 4) | opcode
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, size)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def deflate(payload: bytes) -> bytes:
    """A message compressed as RFC 7692 says (raw deflate, the 00 00 ff ff tail removed)."""
    compressor = zlib.compressobj(wbits=-15)
    return (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


class Wire:
    """One raw WebSocket connection to the server under test."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.extensions = ""  # what the server agreed to in Sec-WebSocket-Extensions
        self.inflater: Any = None
        self.received = 0  # bytes read from the socket after the handshake
        OPEN_CLIENTS.append(self)  # type: ignore[arg-type]

    @classmethod
    async def open(cls, port: int, extensions: str | None = None) -> Wire:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        key = base64.b64encode(os.urandom(16)).decode()
        offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{offer}\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101"), head
        wire = cls(reader, writer)
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                wire.extensions = value.strip()
        if "permessage-deflate" in wire.extensions:
            wire.inflater = zlib.decompressobj(wbits=-15)
        return wire

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next(self, timeout: float = WAIT) -> Received | None:
        """The next frame as sent (fragments not joined), or None at the end of the stream."""
        async with asyncio.timeout(timeout):
            try:
                first, second = await self.reader.readexactly(2)
            except asyncio.IncompleteReadError:
                return None
            size, header = second & 0x7F, 2
            if size == 126:
                size, header = struct.unpack("!H", await self.reader.readexactly(2))[0], 4
            elif size == 127:
                size, header = struct.unpack("!Q", await self.reader.readexactly(8))[0], 10
            assert not second & 0x80, "a server must not mask its frames"
            payload = await self.reader.readexactly(size)
        self.received += header + size
        return Received(
            bool(first & 0x80), bool(first & 0x40), first & 0x0F, payload, header + size
        )

    async def message(self, timeout: float = WAIT) -> Received | None:
        """The next data message, fragments joined and inflated; control frames too, as they
        come (None at the end of the stream)."""
        parts: list[Received] = []
        while True:
            got = await self.next(timeout)
            if got is None:
                return None
            if got.opcode >= CLOSE:
                return got
            parts.append(got)
            if got.fin:
                break
        payload = b"".join(p.payload for p in parts)
        if parts[0].rsv1:
            assert self.inflater is not None, "compressed without permessage-deflate"
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        return Received(True, parts[0].rsv1, parts[0].opcode, payload, sum(p.size for p in parts))

    async def json(self, timeout: float = WAIT) -> dict[str, Any]:
        """The next JSON frame (control frames skipped)."""
        for _ in range(1000):
            got = await self.message(timeout)
            assert got is not None, "closed"
            if got.opcode == TEXT:
                data: dict[str, Any] = json.loads(got.payload)
                return data
        raise AssertionError("no JSON frame")

    async def expect(self, kind: str, **fields: Any) -> dict[str, Any]:
        for _ in range(1000):
            data = await self.json()
            if data["type"] == kind and all(data.get(k) == v for k, v in fields.items()):
                return data
        raise AssertionError(f"no {kind}")

    async def closed_with(self) -> tuple[int | None, list[dict[str, Any]]]:
        """Read to the server's close frame: its code, and the JSON frames that came first."""
        before: list[dict[str, Any]] = []
        for _ in range(10000):
            got = await self.message()
            if got is None:
                return None, before
            if got.opcode == CLOSE:
                return got.close_code, before
            if got.opcode == TEXT:
                before.append(json.loads(got.payload))
        raise AssertionError("no close")

    async def close(self) -> None:
        self.writer.close()
        with suppress(Exception):
            await self.writer.wait_closed()
