"""HTTP on the WebSocket port: security headers, /healthz, origins (CONTRACT §9); /metrics on
its own listener."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import InvalidStatus

from chatsupport import ChatServer

from ..helpers import WAIT, TextClient, WsClient, start_server

REQUIRED_HEADERS = (
    "content-security-policy",
    "referrer-policy",
    "x-frame-options",
    "cache-control",
)


async def http(
    port: int, path: str, method: str = "GET", extra: str = ""
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP/1.1 request; the server closes after its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode())
    try:
        raw = await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def assert_strict(headers: dict[str, str]) -> None:
    for name in REQUIRED_HEADERS:
        assert name in headers, name
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert "set-cookie" not in headers


@pytest.mark.parametrize("path", ["/", "/healthz", "/metrics", "/nothing-here", "/static/../x"])
async def test_every_response_carries_the_security_headers(server: ChatServer, path: str) -> None:
    status, headers, _ = await http(server.http_port, path)
    assert status in (200, 404)
    assert_strict(headers)


async def test_refusals_carry_the_security_headers_too(server: ChatServer) -> None:
    cases = [
        ("/ws", "GET", "Origin: http://evil.example\r\nUpgrade: websocket\r\n", 403),
        ("/ws", "GET", "", 426),  # a plain GET on /ws: websockets' own refusal
        ("/", "POST", "", 405),
        ("/ws", "DELETE", "", 405),
    ]
    for path, method, extra, expected in cases:
        status, headers, _ = await http(server.http_port, path, method, extra)
        assert status == expected, (path, method)
        assert_strict(headers)


async def test_garbage_on_the_http_port_gets_400(server: ChatServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
    writer.write(b"hello there\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    assert data.startswith(b"HTTP/1.1 400 ")


async def test_head_has_headers_and_no_body(server: ChatServer) -> None:
    status, headers, body = await http(server.http_port, "/healthz", "HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


async def test_healthz_is_json_status(server: ChatServer) -> None:
    await WsClient.open(server.http_port)
    status, headers, body = await http(server.http_port, "/healthz")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "status": "ok",
        "connections": 1,
        "broker": "memory",
        "broker_ok": True,
    }


async def test_metrics_on_the_public_port_are_for_this_machine_only(server: ChatServer) -> None:
    """CONTRACT §9's GET /metrics: a scraper on the machine itself, straight, gets it; a
    request a proxy forwarded (the public, through nginx) gets 404."""
    status, headers, body = await http(server.http_port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"chatsupport_events_total" in body
    assert_strict(headers)
    for forwarded in ("X-Forwarded-For: 203.0.113.9\r\n", "Forwarded: for=203.0.113.9\r\n"):
        assert (await http(server.http_port, "/metrics", extra=forwarded))[0] == 404
    assert "metrics" not in server.urls  # no listener of its own unless asked for


async def test_metrics_count_connections_messages_errors_and_limits() -> None:
    server = await start_server(msg_rate=0.001, msg_burst=1.0, metrics_port=0)
    try:
        assert (await http(server.http_port, "/metrics"))[0] == 404
        assert (await http(server.metrics_port, "/elsewhere"))[0] == 404
        status, headers, body = await http(server.metrics_port, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        before = body.decode()
        for kind in ("messages_in", "rate_limited", "slow_disconnects", "resumes"):
            assert f'chatsupport_events_total{{kind="{kind}"}} 0.0' in before
        ws = await WsClient.open(server.http_port)
        tcp = await TextClient.open(server.tcp_port)
        await ws.request({"type": "say", "text": "one"}, "message")
        assert (await ws.request({"type": "say", "text": "two"}, "error"))["code"] == "rate_limited"
        await ws.send("{oops")
        await ws.expect("error")
        text = (await http(server.metrics_port, "/metrics"))[2].decode()
        for line in (
            'chatsupport_connections{interface="json"} 1.0',
            'chatsupport_connections{interface="text"} 1.0',
            'chatsupport_events_total{kind="connections_opened"} 2.0',
            'chatsupport_events_total{kind="messages_in"} 1.0',
            'chatsupport_events_total{kind="messages_delivered"} 2.0',
            'chatsupport_events_total{kind="rate_limited"} 1.0',
            'chatsupport_errors_total{code="rate_limited"} 1.0',
            'chatsupport_errors_total{code="bad_json"} 1.0',
        ):
            assert line in text, line
        assert "127.0.0.1" not in text and ws.name not in text and tcp.name not in text
        assert "one" not in text.split()  # no message text either
    finally:
        await server.stop()


async def test_cross_origin_upgrade_is_refused(server: ChatServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await WsClient.open(server.http_port, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    # The page's own origin is fine, and so is no Origin at all (not a browser).
    same = await WsClient.open(server.http_port, origin=f"http://127.0.0.1:{server.http_port}")
    await same.request({"type": "ping"}, "pong")
    await (await WsClient.open(server.http_port)).request({"type": "ping"}, "pong")


async def test_a_configured_origin_is_allowed() -> None:
    server = await start_server(allowed_origins=["https://chat.example.org"])
    try:
        ws = await WsClient.open(server.http_port, origin="https://chat.example.org")
        await ws.request({"type": "ping"}, "pong")
        with pytest.raises(InvalidStatus):
            await WsClient.open(server.http_port, origin="https://chat.example.org.evil.example")
    finally:
        await server.stop()
