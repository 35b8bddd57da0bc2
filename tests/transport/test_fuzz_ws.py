"""Property test: whatever arrives on /ws, each frame gets a known answer, the connection and
the server go on, and afterwards people still chat normally (CONTRACT §4, §6)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chatsupport import ChatServer
from chatsupport.core import requests as rq
from chatsupport.core.vocabulary import ERROR_CODES
from chatsupport.transport.jsonsyntax import is_utf8

from ..helpers import start_server

CODES = set(ERROR_CODES)
# Types that end the connection by design; everything else may come in any shape.
ENDING = {"quit", "forget"}
FIELDS = ["text", "room", "name", "session", "last", "uid", "on", "minutes", "ref", "token", "id"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
typed_frames = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from(sorted(rq.TYPE_NAMES - ENDING)),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
)
# Well-formed frames whose string values carry bytes that are not UTF-8 (a lone \x80).
mangled_frames = st.builds(
    lambda kind, key, junk: json.dumps({"type": kind, key: "@@"}).encode().replace(b"@@", junk),
    st.sampled_from(sorted(rq.TYPE_NAMES - ENDING)),
    st.sampled_from(FIELDS),
    st.binary(max_size=6).map(lambda junk: junk + b"\x80"),
)
# Frames cut short anywhere, and JSON nested deeper than a recursive decoder follows.
cut_frames = st.tuples(json_values | typed_frames, st.floats(0, 1)).map(
    lambda t: json.dumps(t[0]).encode()[: int(len(json.dumps(t[0])) * t[1])]
)
deep_frames = st.tuples(st.integers(500, 8000), st.booleans()).map(
    lambda t: b"[" * t[0] + b"]" * (t[0] if t[1] else t[0] - 1)
)
# (how to send, payload): "json" a value as a text frame, "text" any string, "binary" a
# binary frame, "raw" arbitrary bytes in a text frame.
frames = st.one_of(
    st.tuples(st.just("json"), json_values | typed_frames),
    st.tuples(st.just("text"), st.text(max_size=200)),
    st.tuples(st.just("binary"), st.binary(max_size=200)),
    st.tuples(st.just("raw"), st.binary(max_size=200)),
    st.tuples(st.just("raw"), mangled_frames),
    st.tuples(st.just("raw"), cut_frames | deep_frames),
)


class ThreadedServer:
    """A real server on its own event loop in a thread, for synchronous hypothesis tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: ChatServer = self.run(start_server())

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.http_port}/ws"

    def stop(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def threaded() -> Iterator[ThreadedServer]:
    server = ThreadedServer()
    yield server
    server.stop()


def _send(ws: ClientConnection, how: str, payload: Any) -> None:
    if how == "json":
        ws.send(json.dumps(payload))
    elif how in ("text", "binary"):  # a str goes as a text frame, bytes as a binary frame
        ws.send(payload)
    else:
        ws.send(payload, text=True)


def _answers_until_pong(ws: ClientConnection, not_utf8: bool) -> list[dict[str, Any]]:
    """Frames up to the pong for our sentinel ping; [] if the frames ended the connection:
    a text frame that is not UTF-8 fails it (1007, RFC 6455 §8.1), or `quit` by chance."""
    got: list[dict[str, Any]] = []
    for _ in range(1000):
        try:
            frame = json.loads(ws.recv(timeout=10))
        except ConnectionClosed as closed:
            if not_utf8:
                assert closed.rcvd is not None and closed.rcvd.code == 1007, closed
                return []
            assert got and got[-1]["type"] == "bye", got[-3:]
            assert got[-1]["reason"] in ("quit", "forgotten")  # a "/quit" typed by chance
            return []
        got.append(frame)
        if frame["type"] == "pong" and frame.get("ref") == "sentinel":
            return got
    raise AssertionError("no pong")


def test_random_frames_never_break_the_connection_or_the_server(
    threaded: ThreadedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="chatsupport")

    @settings(
        max_examples=100,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(frames, min_size=1, max_size=6), st.sampled_from(["", "?resume=1"]))
    def one_connection(sent: list[tuple[str, Any]], query: str) -> None:
        not_utf8 = any(how == "raw" and not is_utf8(payload) for how, payload in sent)
        with connect(threaded.url() + query, open_timeout=10, max_size=1 << 22) as ws:
            try:  # before `welcome`: /ws?resume waits for a first frame
                for how, payload in sent:
                    _send(ws, how, payload)
                ws.send(json.dumps({"type": "ping", "ref": "sentinel"}))
            except ConnectionClosed as closed:  # failed already, as it must be (the close
                # frame may be unread yet: the server closes the TCP connection at once)
                assert not_utf8 and (closed.rcvd is None or closed.rcvd.code == 1007), closed
                return
            answers = _answers_until_pong(ws, not_utf8)
            assert not answers or answers[0]["type"] == "welcome"
            for frame in answers:
                assert isinstance(frame.get("type"), str)
                if frame["type"] == "error":
                    assert frame["code"] in CODES, frame
                    assert isinstance(frame["message"], str) and frame["message"]

    one_connection()
    # The server still serves a normal chat afterwards, and logged no failure of its own.
    with connect(threaded.url()) as a, connect(threaded.url()) as b:
        welcome_a = json.loads(a.recv(timeout=10))
        json.loads(b.recv(timeout=10))
        a.send(json.dumps({"type": "say", "room": "lobby", "text": "after the storm"}))
        for _ in range(100):
            frame = json.loads(b.recv(timeout=10))
            if frame["type"] == "message":
                break
        assert (frame["text"], frame["uid"]) == ("after the storm", welcome_a["uid"])
    # The server's own loggers only: the test's client library may log its own surprise when
    # a connection is failed (1007) and closed at once while it still reads.
    failures = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("chatsupport")
    ]
    assert not failures, [r.getMessage() for r in failures]
