"""Optional TLS (`--tls-cert`/`--tls-key`) on both the HTTP/WebSocket port and the text port."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

from websockets.asyncio.client import connect

from .certs import make_certificate
from .helpers import start_server


async def test_tls_on_both_interfaces(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    server = await start_server(tls_cert=cert, tls_key=key)
    client_ctx = ssl.create_default_context(cafile=cert)
    try:
        assert server.urls["http"].startswith("https://")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port, ssl=client_ctx)
        greeting = (await asyncio.wait_for(reader.readline(), 5)).decode()
        assert greeting.startswith("*** Welcome")
        async with connect(f"wss://127.0.0.1:{server.http_port}/ws", ssl=client_ctx) as ws:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert welcome["type"] == "welcome"
            writer.write(b"over tls\n")
            await writer.drain()
            for _ in range(10):
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame["type"] == "message":
                    assert frame["text"] == "over tls"
                    break
            else:
                raise AssertionError("message over TLS not delivered")
        writer.close()
    finally:
        await server.stop()
