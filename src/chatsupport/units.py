"""Quantities the way a person reads them, for messages and help that quote a setting."""

from __future__ import annotations


def size(count: int) -> str:
    """`65536` -> "64 KiB", `4096` -> "4 KiB", `1000` -> "1000 bytes": whole units only."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} byte{'s' if count != 1 else ''}"
