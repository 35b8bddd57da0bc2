"""HTTP on the same port as /ws: the web page and /healthz, with strict headers.

/metrics (CONTRACT §9) tells how many crisis alerts, talks and matches a node saw: nothing
for the public. This port serves it only to a scraper on the machine itself (a loopback peer
that came through no proxy) and only while no `--metrics-port` listener of its own
(transport/metrics.py) is configured; anyone else gets 404.

Only GET is served (the page is static; everything else is WebSocket frames). Every
response forbids framing, sends no referrer, is not cached, and the page may load
nothing from any other origin.
"""

from __future__ import annotations

import dataclasses
import http
import ipaddress
from importlib import resources

import msgspec
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..core.safety import Safety
from . import help_page
from .context import Edge
from .metrics import CONTENT_TYPE, registry_of, scrape

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


class Routes:
    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.registry = registry_of(edge.chat)

    def get(self, request: Request, peer: str = "") -> Response:
        if request.method not in ("GET", "HEAD"):
            refusal = text_response(405, "only GET is served here\n")
            refusal.headers["Allow"] = "GET, HEAD"
            return refusal
        path, _, query = request.path.partition("?")
        if path == "/metrics" and self.local_scraper(request, peer):
            found = response(200, scrape(self.registry), CONTENT_TYPE)
        else:
            found = self.route(path, query)
        return dataclasses.replace(found, body=b"") if request.method == "HEAD" else found

    def route(self, path: str, query: str = "") -> Response:
        if path in ("/", "/index.html"):
            return _static("index.html")
        if path == "/help":
            return self.help_page(query)
        if path.startswith("/static/"):
            return _static(path[len("/static/") :])
        if path == "/config.json":
            return self.page_config()
        if path == "/healthz":
            return self.health()
        return text_response(404, "not found\n")

    def help_page(self, query: str) -> Response:
        """The help lines without JavaScript (transport/help_page.py): for anyone, always."""
        resources = self.edge.chat.feature(Safety).resources
        html = help_page.render(resources, help_page.region_of(resources, query))
        return response(200, html.encode(), TYPES["html"])

    def local_scraper(self, request: Request, peer: str) -> bool:
        """A scraper on this machine, straight (no proxy forwarded it), and no listener of
        its own for /metrics configured: only then does the public port answer it."""
        if self.edge.config.metrics_port is not None or not peer:
            return False
        if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
            return False
        try:
            return ipaddress.ip_address(peer).is_loopback
        except ValueError:
            return False

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
