"""Anonymous names: friendly adjective + animal, validated, unique by look-alike key.

A name is unique by its `name_key` (confusables.loose_key: "KindOwl", "Kind-Owl",
"Kind Owl." and "Kind Owls" are one name), and is also kept one letter away from
every other name present ("Kimd Owl" while "Kind Owl" is here). Both hold across
nodes through the broker's name claims: a person holds their key and, for keys of
`FUZZY_MIN` characters or more, every one-letter deletion of it (`claim_keys`); two
names one edit apart always share one of those, so a new name is checked with one
claim per character, however many people are present.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection

from . import confusables
from .ports import Broker
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
    return confusables.loose_key(name)


def claim_keys(key: str) -> list[str]:
    """What a person with name key `key` holds in the broker: the key first (the likeliest
    to be taken), then its one-letter deletions."""
    return [key, *sorted(confusables.deletions(key) - {key})]


async def claim(broker: Broker, key: str, uid: str, held: Collection[str] = ()) -> bool:
    """Hold `key`'s claims for `uid`, or none of them (False) when any is someone else's.
    `held`: claims `uid` already holds (their current name's), kept either way."""
    taken: list[str] = []
    for claimed in claim_keys(key):
        if not await broker.claim_name(claimed, uid):
            for undo in taken:
                if undo not in held:
                    await broker.release_name(undo, uid)
            return False
        taken.append(claimed)
    return True


async def release(broker: Broker, key: str, uid: str, keep: Collection[str] = ()) -> None:
    """Let go of `key`'s claims, but those in `keep` (the new name's)."""
    for claimed in claim_keys(key):
        if claimed not in keep:
            await broker.release_name(claimed, uid)


def check_name(
    raw: str, max_len: int = 24, help_lines: confusables.HelpLines | None = None
) -> tuple[str, str | None]:
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
        return name, "that name is reserved: it could pass for staff or the server"
    if help_lines is not None and help_lines.poses(name):
        return name, "that name is reserved: it could pass for a help line"
    return name, None
