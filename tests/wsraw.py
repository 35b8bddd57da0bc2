"""A WebSocket peer built on websockets' sans-I/O client, for tests that must see or withhold
what an ordinary client library does by itself (answering pings, reading at all)."""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from .helpers import OPEN_CLIENTS, WAIT


class RawWs:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proto: ClientProtocol
    ) -> None:
        self.reader, self.writer, self.proto = reader, writer, proto
        self.pending: list[Frame | Response] = []
        self.answer_pings = True
        self.pings = 0
        OPEN_CLIENTS.append(self)  # type: ignore[arg-type]

    @classmethod
    async def open(cls, port: int, path: str = "/ws") -> RawWs:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}"))
        proto.send_request(proto.connect())
        raw = cls(reader, writer, proto)
        raw.flush()
        response = await raw.event()
        assert isinstance(response, Response) and response.status_code == 101, response
        return raw

    def flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                self.writer.write(data)

    async def event(self, timeout: float = WAIT) -> Frame | Response:
        """The next handshake response or frame; pings are counted (and answered if we do)."""
        async with asyncio.timeout(timeout):
            while not self.pending:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("connection closed")
                self.proto.receive_data(data)
                for event in self.proto.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.PING:
                        self.pings += 1
                    if isinstance(event, Frame | Response):
                        self.pending.append(event)
                if self.answer_pings:
                    self.flush()  # the protocol queued a pong for every ping
                else:
                    self.proto.data_to_send()  # dropped: this peer has gone silent
        return self.pending.pop(0)

    async def json(self, timeout: float = WAIT) -> dict[str, Any]:
        """The next text frame, decoded (control frames are skipped)."""
        while True:
            event = await self.event(timeout)
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                data: dict[str, Any] = json.loads(bytes(event.data))
                return data

    def send(self, frame: dict[str, Any]) -> None:
        self.proto.send_text(json.dumps(frame).encode())
        self.flush()

    async def close(self) -> None:
        self.writer.close()
        with suppress(Exception):
            await self.writer.wait_closed()
