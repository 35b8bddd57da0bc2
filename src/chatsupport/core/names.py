"""Anonymous names: friendly adjective + animal, validated, unique by look-alike key."""

from __future__ import annotations

import random
import re

from . import confusables
from .text import clean_name

ADJECTIVES = (
    "Quiet",
    "Gentle",
    "Calm",
    "Kind",
    "Brave",
    "Warm",
    "Steady",
    "Bright",
    "Patient",
    "Soft",
    "Hopeful",
    "Honest",
    "Peaceful",
    "Curious",
    "Mellow",
    "Cheerful",
    "Thoughtful",
    "Easy",
    "Friendly",
    "Sunny",
    "Cozy",
    "Humble",
    "Lucky",
    "Mild",
    "Tender",
    "Wise",
    "Sleepy",
    "Misty",
    "Golden",
    "Silver",
)
ANIMALS = (
    "Otter",
    "Heron",
    "Fox",
    "Owl",
    "Badger",
    "Robin",
    "Panda",
    "Dolphin",
    "Sparrow",
    "Turtle",
    "Rabbit",
    "Deer",
    "Seal",
    "Lynx",
    "Koala",
    "Finch",
    "Hedgehog",
    "Whale",
    "Crane",
    "Wren",
    "Beaver",
    "Marten",
    "Lark",
    "Swan",
    "Moth",
    "Bison",
    "Puffin",
    "Gecko",
    "Quokka",
    "Wombat",
)

_ALLOWED = re.compile(r"^[\w .'\-]+$")


def random_name(rng: random.Random) -> str:
    return f"{rng.choice(ADJECTIVES)} {rng.choice(ANIMALS)}"


def name_key(name: str) -> str:
    """The uniqueness key: two names with the same key look alike to a reader."""
    return confusables.skeleton(name)


def check_name(raw: str, max_len: int = 24) -> tuple[str, str | None]:
    """Clean `raw`; return (name, None) or (name, reason it is refused)."""
    name = clean_name(raw)
    if not name:
        return name, "a name needs at least one visible character"
    if len(name) > max_len:
        return name, f"names are at most {max_len} characters"
    if not _ALLOWED.match(name) or ("_" in name and name.strip("_") == ""):
        return name, "names may use letters, digits, spaces and . ' - only"
    if not name_key(name):
        return name, "a name needs at least one letter or digit"
    if confusables.mixed_script(name):
        return name, "names may not mix alphabets (it lets people pose as others)"
    if confusables.is_reserved(name):
        return name, "that name is reserved"
    return name, None
