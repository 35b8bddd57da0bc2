"""Line framing for line-based transports (the text interface; IRC next).

Input is split on the byte b"\\n" only (a trailing b"\\r" is dropped), so a UTF-8 character
cut across reads is whole again before it is decoded. Each transport words the refusals.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator


class Refusal(enum.Enum):
    """Why a line is refused (not a str: no line can be mistaken for one)."""

    TOO_LONG = enum.auto()
    NOT_UTF8 = enum.auto()


def split_lines(buffer: bytearray, max_bytes: int) -> Iterator[str | Refusal]:
    """Take every complete line out of `buffer`: its text, or why it is refused."""
    while (end := buffer.find(b"\n")) >= 0:
        raw = bytes(buffer[:end]).removesuffix(b"\r")
        del buffer[: end + 1]
        if len(raw) > max_bytes:
            yield Refusal.TOO_LONG
            continue
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            yield Refusal.NOT_UTF8
