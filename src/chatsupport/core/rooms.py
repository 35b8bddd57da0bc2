"""Room names and the rules on them."""

from __future__ import annotations

import re

ROOM_NAME = re.compile(r"^[a-z0-9-]{1,32}$")
PRIVATE_PREFIX = "dm-"  # one-to-one rooms: not joinable, not listed


def normalise_room(raw: str) -> str:
    return raw.strip().lstrip("#").lower()


def valid_room(name: str) -> bool:
    return bool(ROOM_NAME.match(name))


def is_private(name: str) -> bool:
    return name.startswith(PRIVATE_PREFIX)
