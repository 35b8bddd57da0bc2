"""Look-alike detection for names (minimal; replaced by the full table from the safety work)."""

from __future__ import annotations

import unicodedata

_FOLD = str.maketrans({"0": "o", "1": "l", "i": "l", "5": "s", "3": "e", "@": "a", "$": "s"})
_RESERVED = (
    "mod",
    "moderator",
    "admin",
    "administrator",
    "system",
    "server",
    "chatsupport",
    "staff",
    "root",
    "support",
    "listener",
)


def skeleton(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).casefold()
    text = "".join(c for c in text if c.isalnum())
    return text.translate(_FOLD).replace("rn", "m").replace("vv", "w")


def mixed_script(name: str) -> bool:
    scripts = {unicodedata.name(c, "?").split(" ")[0] for c in name if c.isalpha()}
    return len(scripts) > 1


def is_reserved(name: str) -> bool:
    key = skeleton(name).rstrip("0123456789")
    return any(key == skeleton(word) for word in _RESERVED)
