"""The load generator's count mode counts every delivery exactly once, however the
server's bytes are cut into reads (bench/peers.py; no server, no timing)."""

from __future__ import annotations

import asyncio
import random
import re
import sys
from typing import Any

from .helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import wire
from peers import WsPeer


class FakeTransport:
    """Collects what the peer writes (pongs, close replies)."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def stream(rng: random.Random, messages: int) -> bytes:
    """A server's bytes after the handshake: message frames of all three header sizes
    (one with a MARK), presence frames without one, pings."""
    out = [wire.ws_server_frame(b'{"type":"welcome"}')]
    for i in range(messages):
        text = wire.make_text(i % 7, i, 10**18 + i)
        pad = b"y" * rng.choice((0, 10, 100, 200, 70_000))
        out.append(
            wire.ws_server_frame(b'{"type":"message","text":"' + text + b'","p":"' + pad + b'"}')
        )
        if rng.random() < 0.2:
            out.append(wire.ws_server_frame(b'{"type":"presence","event":"join"}'))
        if rng.random() < 0.05:
            out.append(wire.ws_server_frame(b"pp%d" % i, wire.OP_PING))
    return b"".join(out)


def feed(peer: WsPeer, data: bytes, rng: random.Random, switch_at: int) -> None:
    """``data`` in reads of random sizes (1 byte up to a few KB); count mode from ``switch_at``."""
    pos = 0
    switched = False
    while pos < len(data):
        if not switched and pos >= switch_at:
            peer.count_only()
            switched = True
        size = rng.choice((1, 2, 3, 5, 17, 200, 1500, 4096, 65536))
        peer.data_received(data[pos : pos + size])
        pos += size


def run_one(seed: int) -> tuple[int, int, list[bytes], Any]:
    async def go() -> tuple[int, int, list[bytes], Any]:
        rng = random.Random(seed)
        messages = 300
        body = stream(rng, messages)
        peer = WsPeer(b"lobby", 1, "/ws", welcome=True)
        transport = FakeTransport()
        peer.transport = transport  # type: ignore[assignment]
        head = b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
        peer.watch_probes()
        feed(peer, head + body, rng, rng.randrange(len(head), len(head) + len(body)))
        assert peer.counting  # the count path was taken
        return peer.delivered(), messages, transport.written, transport.closed

    return asyncio.run(go())


def test_ws_count_mode_counts_each_message_once_and_answers_pings() -> None:
    for seed in range(40):
        counted, sent, written, closed = run_one(seed)
        assert counted == sent, f"seed {seed}"
        assert not closed
        rng = random.Random(seed)
        body = stream(rng, 300)
        pongs = [w for w in written if w[:1] == b"\x8a"]
        assert len(pongs) == len(written) == len(re.findall(rb"\x89[\x03-\x05]pp\d", body))
