"""Server-to-client WebSocket data frames (RFC 6455 §5.2), built once and shared.

Incoming frames, the handshake and control frames are handled by the `websockets`
sans-I/O protocol; only the outgoing data frames are built here, because a frame sent
by a server is unmasked, hence identical for every recipient: one encode serves a whole
room. Compressed frames (permessage-deflate, RFC 7692) are shareable too, because the
server agrees to `server_no_context_takeover`: each message is compressed on its own,
never against what a particular connection was sent before.
"""

from __future__ import annotations

import struct
import zlib

_TEXT_FIN = 0x81
_TEXT_FIN_DEFLATED = 0xC1  # RSV1 marks a compressed message (RFC 7692 §6)
_SYNC_TAIL = b"\x00\x00\xff\xff"
DEFLATE_FROM = 64  # bytes: a smaller message does not get smaller


def text_frame(payload: bytes, first: int = _TEXT_FIN) -> bytes:
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


class Deflater:
    """Compresses messages one by one, each independent of the others.

    One zlib stream serves every message: a full flush after each empties the compressor's
    history, so every message's output stands alone (any client, any order), without the
    cost of a new compressor (about 256 KiB of tables) per message.
    """

    __slots__ = ("_zlib",)

    def __init__(self, level: int = 6) -> None:
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, -15)

    def frame(self, payload: bytes, plain: bytes) -> bytes:
        """The compressed frame of `payload`, or `plain` (its uncompressed frame) when
        compressing would not make it smaller: RFC 7692 lets a sender choose per message."""
        if len(payload) < DEFLATE_FROM:
            return plain
        data = self._zlib.compress(payload) + self._zlib.flush(zlib.Z_FULL_FLUSH)
        data = data.removesuffix(_SYNC_TAIL)  # §7.2.1: the tail is left off the wire
        framed = text_frame(data, _TEXT_FIN_DEFLATED)
        return framed if len(framed) < len(plain) else plain
