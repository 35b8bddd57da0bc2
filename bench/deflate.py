"""permessage-deflate on the WebSocket interface: bytes on the wire and server CPU per
delivery, with and without it (issue 17). 127.0.0.1 only; the server is stopped by its PID.

A fresh `chatsupport serve` gets N receivers in one room, all offering permessage-deflate or
none of them, and one sender who says M typical chat messages (40-200 characters of text:
a `message` frame of about 200-330 bytes of JSON). Measured for each mode, alternating, over
several rounds: the bytes each receiver reads per message (frame headers included), and the
server's CPU time (utime + stime from /proc) per delivery. Also printed: each sample
message's frame, plain and compressed, as the server's codec makes it.

    python bench/deflate.py [--receivers 200] [--messages 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import zlib
from pathlib import Path

from meter import proc_cpu_seconds
from targets import Env, start_chatsupport
from wire import ws_client_frame, ws_request

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from chatsupport.core import events as ev  # noqa: E402
from chatsupport.transport.codec import JsonCodec  # noqa: E402

TEXTS = [
    "hi everyone",
    "rough day today, just needed somewhere quiet to sit for a bit",
    "thank you, that actually helps more than you know",
    "has anyone else found that evenings are the hardest part? mornings i can manage",
    "i tried the breathing thing you mentioned earlier and it took the edge off. still "
    "awake though, and my head keeps going over the same conversation again and again",
    "welcome back! glad to see you here again",
    "it's okay not to have the words yet. take your time, we're listening",
    "my sister called tonight and we talked for an hour, first time in months. i didn't "
    "think she'd pick up. feeling a mix of relief and nerves about where it goes from here",
]
OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
# With the benchmark's limits (targets.py); no presence, so only the messages are counted.
SERVER_FLAGS = ["--presence-limit", "0", "--outbox-limit", "67108864", "--log-level", "WARNING"]


def inflate(payload: bytes) -> bytes:
    """One message as a client without context takeover inflates it (RFC 7692 §7.2.2)."""
    return zlib.decompressobj(wbits=-15).decompress(payload + b"\0\0\xff\xff")


class Receiver(asyncio.Protocol):
    """Counts the bytes and data frames it reads once it is in the room (no decoding)."""

    def __init__(self, deflate: bool, port: int) -> None:
        self.deflate, self.port = deflate, port
        self.buffer = bytearray()
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.counting = False
        self.bytes = 0
        self.frames = 0
        self.compressed = 0
        self.first_payload = b""
        self.enough = asyncio.Event()
        self.want = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        request = ws_request(self.port, "/ws")
        if self.deflate:
            request = request.replace(b"\r\n\r\n", b"\r\n" + OFFER.encode() + b"\r\n")
        transport.write(request)

    def data_received(self, data: bytes) -> None:
        if self.counting:
            self.bytes += len(data)
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            assert head.startswith(b"HTTP/1.1 101"), head
            assert (b"permessage-deflate" in head) == self.deflate, head
            del self.buffer[: end + 4]
            self.upgraded = True
        self._frames()

    def _frames(self) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            size, header = buf[1] & 0x7F, 2
            if size == 126:
                if len(buf) < 4:
                    return
                size, header = int.from_bytes(buf[2:4], "big"), 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size, header = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < header + size:
                return
            first, payload = buf[0], bytes(buf[header : header + size])
            del buf[: header + size]
            if first & 0x0F != 0x1:
                continue
            if not self.counting:
                text = payload if first & 0x40 == 0 else inflate(payload)
                if b'"joined"' in text and not self.ready.done():
                    self.ready.set_result(None)
                continue
            self.frames += 1
            if first & 0x40:
                self.compressed += 1
                if not self.first_payload:
                    self.first_payload = inflate(payload)
            if self.frames >= self.want:
                self.enough.set()


async def one_round(
    port: int, pid: int, deflate: bool, receivers: int, messages: int
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    peers: list[Receiver] = []
    for _ in range(receivers):
        _, peer = await loop.create_connection(lambda: Receiver(deflate, port), "127.0.0.1", port)
        peers.append(peer)
    await asyncio.wait_for(asyncio.gather(*(p.ready for p in peers)), 60)
    sender = Receiver(False, port)
    await loop.create_connection(lambda: sender, "127.0.0.1", port)
    await asyncio.wait_for(sender.ready, 30)
    for peer in peers:
        peer.counting, peer.want = True, messages
    cpu, started = proc_cpu_seconds([pid]), time.monotonic()
    for n in range(messages):
        text = TEXTS[n % len(TEXTS)]
        frame = json.dumps({"type": "say", "room": "lobby", "text": text}).encode()
        sender.transport.write(ws_client_frame(frame))
        if n % 20 == 19:
            await asyncio.sleep(0.005)  # a busy room, not one burst
    await asyncio.wait_for(asyncio.gather(*(p.enough.wait() for p in peers)), 300)
    cpu, elapsed = proc_cpu_seconds([pid]) - cpu, time.monotonic() - started
    if deflate:
        assert all(p.compressed for p in peers), "deflate agreed but nothing compressed"
        assert b'"type":"message"' in peers[0].first_payload  # it inflates to the message
    for peer in [*peers, sender]:
        peer.transport.close()
    deliveries = receivers * messages
    return {
        "bytes_per_message": sum(p.bytes for p in peers) / deliveries,
        "cpu_us_per_delivery": cpu / deliveries * 1e6,
        "seconds": elapsed,
    }


def sizes() -> list[tuple[int, int, int]]:
    """(text length, plain frame, compressed frame) for each sample, from the codec."""
    codec, rows = JsonCodec(), []
    for text in TEXTS:
        message = ev.Message(
            id=41, room="lobby", uid="u72d1242aee1e", name="Thoughtful Sparrow", role=None,
            kind="say", text=text, ts=1735689600.123,
        )  # fmt: skip
        rows.append((len(text), len(codec.encode(message)), len(codec.encode(message, True))))
    return rows


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receivers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print("| text (chars) | plain frame (bytes) | deflated frame (bytes) | saved |")
    print("|---|---|---|---|")
    for length, plain, deflated in sizes():
        print(f"| {length} | {plain} | {deflated} | {1 - deflated / plain:.0%} |")
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    env = Env(src=ROOT / "src", logs=ROOT / "bench" / "results" / "deflate", server_cpu=None)
    for _ in range(args.rounds):
        for deflate in (False, True):
            server, port = start_chatsupport(env, "server", "ws", None, SERVER_FLAGS)
            try:
                results[deflate].append(
                    await one_round(port, server.pid, deflate, args.receivers, args.messages)
                )
            finally:
                server.stop()
    print(f"\n{args.receivers} receivers x {args.messages} messages, {args.rounds} rounds (median)")
    print("| mode | bytes per message per receiver | server CPU per delivery (µs) |")
    print("|---|---|---|")
    for deflate in (False, True):
        rows = results[deflate]
        wire = statistics.median(r["bytes_per_message"] for r in rows)
        cpu = statistics.median(r["cpu_us_per_delivery"] for r in rows)
        print(f"| {'permessage-deflate' if deflate else 'plain'} | {wire:.1f} | {cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
