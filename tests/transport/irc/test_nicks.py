"""Names <-> nicks: reversible, collision-free, valid IRC nicks."""

from __future__ import annotations

import random
import re

from chatsupport.core.names import ADJECTIVES, ANIMALS, check_name
from chatsupport.transport.ircproto.nicks import same_nick, to_name, to_nick

NICK = re.compile(r"^[^\s,*?!@:#.'\-0-9][^\s,*?!@:#.']*$")


def test_examples() -> None:
    assert to_nick("Quiet Otter") == "Quiet_Otter"
    assert to_nick("Dr. O'Neil") == "Dr|_O`Neil"
    assert to_nick("snake_case") == "snake^case"
    assert to_nick("2cool") == "_2cool"
    assert to_nick("-dash") == "_-dash"
    assert to_nick("Zoë") == "Zoë"


def test_round_trip_and_valid_nick() -> None:
    names = [f"{a} {b}" for a in ADJECTIVES for b in ANIMALS]
    names += ["QuietOtter", "Quiet_Otter", "Quiet.Otter", "O'Neil", "2cool", "-x", "a-b", "x_"]
    rng = random.Random(7)
    alphabet = "abcXYZ019 ._'-éß"
    for _ in range(3000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        name, problem = check_name(raw)
        if problem is None:
            names.append(name)
    nicks: dict[str, str] = {}
    for name in names:
        nick = to_nick(name)
        assert NICK.match(nick), (name, nick)
        assert to_name(nick) == name
        assert nicks.setdefault(nick, name) == name  # never two names for one nick


def test_lenient_for_asked_nicks() -> None:
    assert to_name("Sleepy_Cat") == "Sleepy Cat"
    assert to_name("_abc") == " abc"  # the core's name rules clean or refuse the rest
    assert to_name("[weird]") == "[weird]"


def test_same_nick_ignores_case() -> None:
    assert same_nick("ChatSupport", "chatsupport")
    assert not same_nick("a", "b")
