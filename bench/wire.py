"""Wire formats shared by the load generator and the sink server.

Nothing here does I/O: message texts, WebSocket frames and the handshake, RESP
commands and pushes. The load generator's hot paths inline some of this for
speed; the functions here are the readable definition they follow.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

# A benchmark message text is exactly TEXT_LEN bytes of ASCII:
#   ~b~PPPPP.SSSSSSSSS.TTTTTTTTTTTTTTTTTTTT.xxxx...
# P publisher index, S sequence number, T send time (perf_counter_ns of the
# load generator, which is also the receiver: one clock). Probes used to check
# that every receiver is in its room are ~p~KKKKK padded the same way.
TEXT_LEN: Final = 64
MARK: Final = b"~b~"
PROBE: Final = b"~p~"

WS_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_KEY: Final = "dGhlIHNhbXBsZSBub25jZQ=="
OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA


def make_text(pub: int, seq: int, ts_ns: int) -> bytes:
    head = b"~b~%05d.%09d.%020d." % (pub, seq, ts_ns)
    return head.ljust(TEXT_LEN, b"x")


def make_probe(key: int) -> bytes:
    return (b"~p~%05d." % key).ljust(TEXT_LEN, b"x")


def parse_text(data: bytes) -> tuple[int, int, int] | None:
    """(publisher, sequence, send time) of the benchmark text inside ``data``."""
    i = data.find(MARK)
    if i < 0 or len(data) < i + 39:
        return None
    return int(data[i + 3 : i + 8]), int(data[i + 9 : i + 18]), int(data[i + 19 : i + 39])


def parse_probe(data: bytes) -> int | None:
    i = data.find(PROBE)
    if i < 0 or len(data) < i + 8:
        return None
    return int(data[i + 3 : i + 8])


# --- WebSocket (RFC 6455) ----------------------------------------------------


def ws_header(length: int, opcode: int = OP_TEXT, masked: bool = False) -> bytes:
    first = 0x80 | opcode
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head = bytes((first, mask_bit | length))
    elif length < 1 << 16:
        head = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
    return head


def ws_client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """A masked client frame. The masking key is zero: valid, and XOR-free.

    RFC 6455 wants an unpredictable key to protect intermediaries from cache
    poisoning by hostile scripts; a load generator on loopback has neither.
    """
    return ws_header(len(payload), opcode, masked=True) + b"\0\0\0\0" + payload


def ws_server_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    return ws_header(len(payload), opcode) + payload


def ws_unmask(payload: bytes, key: bytes) -> bytes:
    if key == b"\0\0\0\0" or not payload:
        return payload
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def ws_accept(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key.strip() + WS_GUID).digest())


def ws_request(port: int, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Origin: http://127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {WS_KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "\r\n"
    ).encode()


def ws_response(request: bytes) -> bytes:
    key = b""
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    return (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + ws_accept(key) + b"\r\n\r\n"
    )


# --- RESP (Redis) --------------------------------------------------------------


def resp_command(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def resp_push(channel: bytes, payload: bytes) -> bytes:
    """The push a subscriber receives for one PUBLISH (RESP2)."""
    return b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
        len(channel),
        channel,
        len(payload),
        payload,
    )


def resp_push_len(channel: bytes, payload_len: int = TEXT_LEN) -> int:
    return len(resp_push(channel, b"x" * payload_len))
