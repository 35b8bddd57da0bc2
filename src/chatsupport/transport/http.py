"""HTTP on the same port as /ws: the web page, /healthz and /metrics, with strict headers.

Only GET is served (the page is static; everything else is WebSocket frames). Every
response forbids framing, sends no referrer, is not cached, and the page may load
nothing from any other origin.
"""

from __future__ import annotations

import dataclasses
import http
from importlib import resources

import msgspec
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..core.chat import Chat
from .context import Edge

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    ("Cache-Control", "no-store"),
)
TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "json": "application/json",
    "ico": "image/x-icon",
    "txt": "text/plain; charset=utf-8",
}


def response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers(SECURITY_HEADERS)
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    phrase = http.HTTPStatus(status).phrase
    return Response(status, phrase, headers, body)


def text_response(status: int, text: str) -> Response:
    return response(status, text.encode(), TYPES["txt"])


def _static(name: str) -> Response:
    if "/" in name or name.startswith(".") or not name:
        return text_response(404, "not found\n")
    path = resources.files("chatsupport.web").joinpath("static", name)
    if not path.is_file():
        return text_response(404, "not found\n")
    kind = TYPES.get(name.rpartition(".")[2], "application/octet-stream")
    return response(200, path.read_bytes(), kind)


# Counters shown from the start (at 0), so dashboards and alerts see them before they happen.
KNOWN_COUNTERS = (
    "connections_opened",
    "connections_refused",
    "requests",
    "messages_in",
    "messages_delivered",
    "rate_limited",
    "slow_disconnects",
    "keepalive_timeouts",
    "resumes",
    "resumes_overtaken",
)


class ChatCollector(Collector):
    """Reads the core's counters at scrape time: nothing is counted twice, nothing identifies."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    def collect(self):  # type: ignore[no-untyped-def]
        counters = CounterMetricFamily("chatsupport_events", "Events by kind", labels=["kind"])
        errors = CounterMetricFamily("chatsupport_errors", "Errors sent, by code", labels=["code"])
        values = dict.fromkeys(KNOWN_COUNTERS, 0) | self.chat.counters
        for name, value in sorted(values.items()):
            if name.startswith("error_"):
                errors.add_metric([name[6:]], value)
            else:
                counters.add_metric([name], value)
        yield counters
        yield errors
        connections = GaugeMetricFamily(
            "chatsupport_connections", "Open connections", labels=["interface"]
        )
        by_interface: dict[str, int] = {"text": 0, "json": 0}
        for link in self.chat.links:
            by_interface[link.sink.interface] = by_interface.get(link.sink.interface, 0) + 1
        for interface, count in by_interface.items():
            connections.add_metric([interface], count)
        yield connections
        yield GaugeMetricFamily(
            "chatsupport_sessions", "People known (incl. resumable)", value=len(self.chat.sessions)
        )
        yield GaugeMetricFamily(
            "chatsupport_rooms",
            "Rooms with people on this node",
            value=self.chat.rooms_in_use(),
        )


class Routes:
    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ChatCollector(edge.chat))

    def get(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            refusal = text_response(405, "only GET is served here\n")
            refusal.headers["Allow"] = "GET, HEAD"
            return refusal
        found = self.route(request.path.partition("?")[0])
        return dataclasses.replace(found, body=b"") if request.method == "HEAD" else found

    def route(self, path: str) -> Response:
        if path in ("/", "/index.html"):
            return _static("index.html")
        if path.startswith("/static/"):
            return _static(path[len("/static/") :])
        if path == "/config.json":
            return self.page_config()
        if path == "/healthz":
            return self.health()
        if path == "/metrics":
            return response(
                200, generate_latest(self.registry), "text/plain; version=0.0.4; charset=utf-8"
            )
        return text_response(404, "not found\n")

    def page_config(self) -> Response:
        """What the web page needs from the operator's settings (nothing secret)."""
        body = {"exit_url": self.edge.config.exit_url}
        return response(200, msgspec.json.encode(body), TYPES["json"])

    def health(self) -> Response:
        chat = self.edge.chat
        healthy = getattr(chat.broker, "healthy", True)
        body = {
            "status": "ok" if healthy else "degraded",
            "connections": len(chat.links),
            "broker": self.edge.config.broker.partition(":")[0],
            "broker_ok": healthy,
        }
        return response(200 if healthy else 503, msgspec.json.encode(body), TYPES["json"])
