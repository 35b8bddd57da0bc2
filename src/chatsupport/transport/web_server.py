"""The HTTP listener: the web page, /healthz and /metrics (transport/http.py) and the
WebSocket peer (`GET /ws`, transport/ws.py) on one port.

Composed here so that neither module imports the other's wiring: the peer is given the
routes' `get` for any request that is not an upgrade.
"""

from __future__ import annotations

import asyncio
import ssl

from .context import Edge, listen
from .http import Routes
from .ws import HttpConnection, Keepalive


async def start_http(
    edge: Edge, host: str, port: int, tls: ssl.SSLContext | None, reuse_port: bool = False
) -> asyncio.Server:
    """`reuse_port`: several worker processes listen on this port (`--workers`)."""
    respond, keepalive = Routes(edge).get, Keepalive(edge.config)
    return await listen(
        lambda: HttpConnection(edge, respond, keepalive), host, port, tls, reuse_port
    )
