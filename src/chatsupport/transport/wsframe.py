"""Server-to-client WebSocket data frames (RFC 6455 §5.2), built once and shared.

Incoming frames, the handshake and control frames are handled by the `websockets`
sans-I/O protocol; only the outgoing data frames are built here, because a frame sent
by a server is unmasked and uncompressed, hence identical for every recipient: one
encode serves a whole room.
"""

from __future__ import annotations

import struct

_TEXT_FIN = 0x81


def text_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = bytes((_TEXT_FIN, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", _TEXT_FIN, 126, size)
    else:
        header = struct.pack("!BBQ", _TEXT_FIN, 127, size)
    return header + payload
