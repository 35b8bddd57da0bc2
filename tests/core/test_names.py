"""Names that cannot pose: loose keys, one-letter neighbours, staff words and help lines."""

from __future__ import annotations

import random
import string
import time

import pytest

from chatsupport.broker.memory import MemoryBroker
from chatsupport.core import names
from chatsupport.core.confusables import HelpLines, deletions, loose_key
from chatsupport.core.names import check_name, claim_keys, name_key
from chatsupport.core.text import within_one_edit

LINES = HelpLines(
    [
        "Samaritans",
        "Samaritans Ireland",
        "Shout",
        "Lifeline",
        "Crisis Text Line",
        "Die Dargebotene Hand / La Main Tendue / Telefono Amico",
        "1737, Need to talk?",
    ]
)


class CountingBroker(MemoryBroker):
    """The in-memory broker, counting the name claims it is asked for."""

    def __init__(self) -> None:
        super().__init__(600.0, 500, time.time)
        self.claims = 0

    async def claim_name(self, key: str, uid: str) -> bool:
        self.claims += 1
        return await super().claim_name(key, uid)


@pytest.mark.parametrize("twin", ["KindOwl", "Kind-Owl", "Kind Owl.", "Kind Owls", "kind  owl"])
def test_spacing_punctuation_and_plurals_are_one_name(twin: str) -> None:
    assert name_key(twin) == name_key("Kind Owl")


def test_names_one_letter_apart_share_a_claim() -> None:
    for a, b in [("Kind Owl", "Kimd Owl"), ("Kind Owl", "Kind Ow"), ("Kind Owl", "Kind Owlz")]:
        assert set(claim_keys(name_key(a))) & set(claim_keys(name_key(b))), (a, b)
    for a, b in [("Kind Owl", "Calm Owl"), ("Sam", "Pam"), ("Kind Owl", "Kind Fox")]:
        assert not set(claim_keys(name_key(a))) & set(claim_keys(name_key(b))), (a, b)


@pytest.mark.parametrize("key", ["klndowl", "abcde", "quietotter"])
def test_every_one_edit_neighbour_shares_a_deletion(key: str) -> None:
    alphabet = "abklowz"
    neighbours = {key[:i] + c + key[i + 1 :] for i in range(len(key)) for c in alphabet}
    neighbours |= {key[:i] + c + key[i:] for i in range(len(key) + 1) for c in alphabet}
    neighbours |= deletions(key)
    mine = {key} | deletions(key)
    for other in neighbours:
        assert within_one_edit(key, other)
        assert mine & ({other} | deletions(other)), other


async def test_look_alikes_of_someone_present_cannot_be_claimed() -> None:
    broker = CountingBroker()
    assert await names.claim(broker, name_key("Kind Owl"), "u1")
    for twin in ["KindOwl", "Kind-Owl", "Kind Owl.", "Kind Owls", "Kimd Owl", "Klnd Owl"]:
        assert not await names.claim(broker, name_key(twin), "u2"), twin
    assert await names.claim(broker, name_key("Calm Heron"), "u2")
    # a refused claim leaves nothing behind: once Kind Owl goes, the name is free
    await names.release(broker, name_key("Kind Owl"), "u1")
    assert await names.claim(broker, name_key("Kimd Owl"), "u3")


async def test_a_rename_to_a_near_name_of_ones_own_keeps_the_claims_both_share() -> None:
    broker = CountingBroker()
    old, new = name_key("Kind Owl"), name_key("Kimd Owl")
    assert await names.claim(broker, old, "u1")
    assert await names.claim(broker, new, "u1", held=claim_keys(old))
    await names.release(broker, old, "u1", keep=claim_keys(new))
    assert not await names.claim(broker, name_key("Kind Owl"), "u2")  # still near Kimd Owl
    await names.release(broker, new, "u1")
    assert await names.claim(broker, name_key("Kind Owl"), "u2")


async def test_the_check_costs_the_same_however_many_people_are_present() -> None:
    """One claim per character of the key: measured with 20,000 people present."""
    broker, rng = CountingBroker(), random.Random(19)
    for n in range(20_000):
        name = "".join(rng.choice(string.ascii_lowercase) for _ in range(12))
        assert await names.claim(broker, name_key(name), f"u{n}")
    broker.claims = 0
    started = time.perf_counter()
    for n in range(200):
        await names.claim(broker, name_key(f"Someone New {n:03d}"), "new")
        await names.release(broker, name_key(f"Someone New {n:03d}"), "new")
    per_check = (time.perf_counter() - started) / 200
    assert broker.claims <= 200 * (len(name_key("Someone New 000")) + 1)
    print(f"name claim + release with 20,000 present: {per_check * 1e6:.0f} µs")


@pytest.mark.parametrize(
    "name",
    [
        "Volunteer Sam",
        "Crisis Counsellor",
        "Counselor Kim",
        "Therapist",
        "The Therapists",
        "Listner",
        "Listners",
        "Voluntear",
        "Crisis Team",
        "Crisis Line",
        "Hotline Helper",
    ],
)
def test_staff_titles_and_their_slips_are_refused(name: str) -> None:
    _, problem = check_name(name, 24, LINES)
    assert problem is not None and "staff" in problem, (name, problem)


@pytest.mark.parametrize(
    "name",
    [
        *("Samaritans", "Samaritan", "Samaritans Sam", "Sam Samaritan", "Lifeline"),
        *("Lifeline Fan", "Shout", "Crisis Text Line", "La Main Tendue", "Telefono Amico"),
        "Need to talk",
    ],
)
def test_help_line_names_are_refused(name: str) -> None:
    _, problem = check_name(name, 24, LINES)
    assert problem is not None and "help line" in problem, (name, problem)


@pytest.mark.parametrize(
    "name",
    [
        *("Kind Owl", "Shout Owl", "Need Support", "Listening Ear", "Crisis Otter", "Samuel"),
        *("Life Of Pi Fan", "Main Street", "Text Me", "Blue Heron", "Sam", "Therapy Dog Fan"),
    ],
)
def test_ordinary_names_stay_free(name: str) -> None:
    assert check_name(name, 24, LINES) == (name, None)


def test_a_name_without_letters_is_refused() -> None:
    assert check_name("...", 24)[1] == "a name needs at least one letter or digit"
    assert loose_key("- . -") == ""
