"""/metrics (Prometheus text) on a listener of its own, off the public port.

The counters say how many crisis alerts, one-to-one talks and matches a node saw: nothing
for the public. `--metrics-port` opens this listener (on `--metrics-host`, 127.0.0.1 by
default); without it there is no /metrics at all. It answers one GET per connection and
closes, reading at most a few KB of request for a few seconds: a scraper needs no more.
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..core.chat import Chat

MAX_REQUEST = 8192  # bytes of request line and headers
READ_TIMEOUT = 5.0  # seconds to send them
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

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
    "crisis_alerts",
    "crisis_alerts_late",
    "talk_requests",
    "matches",
    "feedback_helpful",
    "feedback_not_really",
    "feedback_skip",
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


def registry_of(chat: Chat) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ChatCollector(chat))
    return registry


async def start_metrics(chat: Chat, host: str, port: int) -> asyncio.Server:
    registry = registry_of(chat)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            async with asyncio.timeout(READ_TIMEOUT):  # ValueError: past MAX_REQUEST
                head = await reader.readuntil(b"\r\n\r\n")
            method, path = [*head.split(b" ", 2), b"", b""][:2]
            writer.write(_answer(registry, method, path.partition(b"?")[0]))
            await writer.drain()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    return await asyncio.start_server(serve, host, port, limit=MAX_REQUEST)


def scrape(registry: CollectorRegistry) -> bytes:
    """The Prometheus text of `registry`."""
    return bytes(generate_latest(registry))


def _answer(registry: CollectorRegistry, method: bytes, path: bytes) -> bytes:
    if method in (b"GET", b"HEAD") and path == b"/metrics":
        status, body, kind = "200 OK", scrape(registry), CONTENT_TYPE
    else:
        status, body, kind = "404 Not Found", b"not found\n", "text/plain; charset=utf-8"
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + (b"" if method == b"HEAD" else body)
