"""Look-alike names: skeleton keys, mixed scripts, reserved names."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chatsupport.core import confusables
from chatsupport.core.confusables import (
    RESERVED_NAMES,
    are_confusable,
    is_reserved,
    mixed_script,
    skeleton,
)
from chatsupport.core.text import within_one_edit

# ---------------------------------------------------------------------------
# skeleton
# ---------------------------------------------------------------------------

LOOK_ALIKE_PAIRS = [
    ("Quiet Otter", "quiet otter"),  # case
    ("Quiet Otter", "QUIET OTTER"),
    ("Quiet Otter", "Quiet 0tter"),  # digit zero
    ("Quiet Otter", "Quiet \u041etter"),  # Cyrillic capital O
    ("Quiet Otter", "Quiet \u039ftter"),  # Greek capital Omicron
    ("Quiet Otter", "Quiet Ot\u200dter"),  # zero-width joiner inside
    ("Quiet Otter", "Quiet Ot\u200btter".replace("tt", "t", 1)),  # zero-width space
    ("Quiet Otter", "\u200eQuiet Otter\u200f"),  # bidi marks
    ("Quiet Otter", "Quiet\u00a0Otter"),  # no-break space
    ("Quiet Otter", "Quiet   Otter "),  # whitespace runs
    ("Quiet Otter", "\uff31\uff55\uff49\uff45\uff54 Otter"),  # fullwidth
    ("Quiet Otter", "\U0001d410uiet Otter"),  # mathematical bold Q
    ("Quiet Otter", "Qu\u0456et Otter"),  # Cyrillic i
    ("Quiet Otter", "Qu1et Otter"),
    ("Quiet Otter", "QuIet Otter"),
    ("Quiet Otter", "Quiet Ott\u00e9r"),  # accent
    ("Quiet Otter", "Quiet Otte\u0301r"),  # combining accent
    ("Quiet Otter", "Qu\u0131et Otter"),  # dotless i
    ("Quiet Otter", "Quiet O\u0074\u0074\u0435r"),  # Cyrillic e
    ("Mild Moth", "Mild rnoth"),  # rn / m
    ("Wild Wolf", "Wild VVolf"),  # vv / w
    ("Wild Wolf", "Wild vvolf"),
    ("Paul", "\u0420aul"),  # Cyrillic Er
    ("Sassy", "$a55y"),
    ("Hope", "\u041dope"),  # Cyrillic En looks like H
    ("Nora", "\u039dora"),  # Greek Nu
    ("Lily", "1ily"),
    ("Lily", "Iily"),
    ("Kind Koala", "\u039aind \u039aoala"),  # Greek Kappa
    ("Calm Cat", "\u0421alm \u0441at"),  # Cyrillic Es
]


@pytest.mark.parametrize(("a", "b"), LOOK_ALIKE_PAIRS)
def test_look_alikes_share_a_skeleton(a: str, b: str) -> None:
    assert skeleton(a) == skeleton(b)
    assert are_confusable(a, b)


DIFFERENT_PAIRS = [
    ("Quiet Otter", "Quiet Otters"),
    ("Quiet Otter", "Quiet Hotter"),
    ("Quiet Otter", "QuietOtter"),  # missing space is visible
    ("Quiet Otter", "Quiet_Otter"),
    ("Brave Bear", "Brave Bean"),
    ("Sam", "Pam"),
    ("\u0421\u0430\u0448\u0430", "\u041c\u0430\u0448\u0430"),  # Саша / Маша
    ("\u6708", "\u65e5"),  # different Han characters
    ("\u0915\u0941", "\u0915"),  # Devanagari vowel sign is not decoration
]


@pytest.mark.parametrize(("a", "b"), DIFFERENT_PAIRS)
def test_different_names_keep_different_skeletons(a: str, b: str) -> None:
    assert skeleton(a) != skeleton(b)


def test_skeleton_of_invisible_only_name_is_empty() -> None:
    assert skeleton("\u200b\u200c\u200d\u2060\ufeff") == ""
    assert skeleton("\u3164") == ""  # Hangul filler
    assert skeleton("   ") == ""


def test_fold_table_is_well_formed() -> None:
    table = confusables._FOLD_SOURCE
    for key, value in table.items():
        assert len(key) == 1
        assert value.isascii() and value.isalpha() and value.islower(), key
        assert value not in table, f"{value!r} is both a target and a key"
        assert unicodedata.normalize("NFD", key) == key, f"{key!r} decomposes"
        assert key == unicodedata.normalize("NFKC", key.casefold()), f"{key!r} not casefolded"
    for pair, letter in confusables._PAIRS:
        assert letter not in pair


names = st.text(max_size=40)
interesting = st.text(
    alphabet=st.sampled_from(
        [
            *"aAiIlL1|!0oO5sSrnmvwVW _-.2@$",
            *("\u0430", "\u0410", "\u043e", "\u041e", "\u0456", "\u03bf", "\u039f", "\u0397"),
            *("\u200b", "\u200d", "\u0301", "\u0308", "\u00e9", "\u0131", "\u0130", "\ufb01"),
            *("\u0585", "\u0915", "\u093c", "\u0941", "\u1100", "\u1161", "\u3164", "\u00df"),
        ]
    ),
    max_size=30,
)


@given(st.one_of(names, interesting))
@example("\u0130")  # capital I with dot: casefolds to i + combining dot
@example("\u0585\u0301")  # Armenian o (folds to Latin o) with a mark
@example("\u1100\u200d\u1161")  # Hangul jamo around an invisible joiner
@example("\u0345")  # combining ypogegrammeni casefolds to iota
@example("r\u200bn")
def test_skeleton_is_idempotent_and_total(name: str) -> None:
    key = skeleton(name)
    assert isinstance(key, str)
    assert skeleton(key) == key
    assert key == key.strip()
    assert "  " not in key


@given(st.one_of(names, interesting))
def test_skeleton_ignores_case(name: str) -> None:
    assert skeleton(name) == skeleton(name.casefold())
    assert skeleton(name) == skeleton(name.upper().casefold())


@given(names, st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]))
def test_invisible_characters_never_matter(name: str, invisible: str) -> None:
    for i in range(len(name) + 1):
        spoof = name[:i] + invisible + name[i:]
        assert skeleton(spoof) == skeleton(name)


@given(st.one_of(names, interesting))
def test_other_functions_never_raise(name: str) -> None:
    assert isinstance(mixed_script(name), bool)
    assert isinstance(is_reserved(name), bool)


# ---------------------------------------------------------------------------
# mixed_script
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Quiet \u041etter",  # Cyrillic O + Latin
        "\u0410dmin",
        "\u03b1lpha",  # Greek alpha + Latin
        "\u0421\u0430\u0448a",  # Cyrillic word ending in a Latin a
        "\u041c\u03bf\u0434",  # Cyrillic + Greek
        "Oтter",
        "pay\u0440al",
        "\u0585tter",  # Armenian o
    ],
)
def test_mixed_script_words_are_flagged(name: str) -> None:
    assert mixed_script(name)


@pytest.mark.parametrize(
    "name",
    [
        "Quiet Otter",
        "Quiet 0tter",
        "\u0421\u0430\u0448\u0430",  # Саша, all Cyrillic
        "\u0421\u0430\u0448\u0430 Otter",  # a Cyrillic word and a Latin word
        "\u039d\u03af\u03ba\u03bf\u03c2",  # Νίκος
        "Zo\u00eb",
        "Jos\u00e9 2",
        "\u6771\u4eac Otter",
        "Tokyo\u6771\u4eac",  # Latin + Han is allowed (UTS #39 highly restrictive)
        "\u3072\u3089\u304c\u306a\u30ab\u30bf\u30ab\u30ca\u6f22\u5b57",  # Japanese
        "\ud55c\uad6d\uc5b4",  # Hangul
        "\uff31uiet",  # fullwidth Latin with Latin
        "Bob\u02bcs",  # modifier letter apostrophe
        "\u0928\u092e\u0938\u094d\u0924\u0947",  # Devanagari with signs
        "",
        "123",
    ],
)
def test_single_script_words_are_not_flagged(name: str) -> None:
    assert not mixed_script(name)


# ---------------------------------------------------------------------------
# is_reserved
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("word", sorted(RESERVED_NAMES))
def test_every_reserved_word_is_reserved(word: str) -> None:
    assert is_reserved(word)
    assert is_reserved(word.upper())
    assert is_reserved(word.capitalize())
    assert is_reserved(word + "s")
    assert is_reserved(f"The {word}")
    assert is_reserved(f"{word} 2")


def test_contract_and_brief_names_are_reserved() -> None:
    for name in ["mod", "moderator", "admin", "administrator", "system", "server"]:
        assert is_reserved(name)
    for name in ["chatsupport", "staff", "listener", "root", "support"]:
        assert is_reserved(name)


@pytest.mark.parametrize(
    "name",
    [
        # decorations
        "Admin 2",
        "Admin2",
        "2Admin",
        "admin_2",
        "the_moderator",
        "TheModerator",
        "themoderator",
        "Real Admin",
        "Official Moderator",
        "~Admin~",
        "[mod]",
        "*Staff*",
        "xXadminXx",
        "Mod-Team",
        "ModTeam",
        "ChatSupport Team",
        "Chat Support",
        "ChatSupportTeam",
        "Support Team",
        "System Message",
        "Server Notice",
        "Server Bot",
        "root user",
        "Sys Admin",
        "SysAdmin",
        "Head Mod",
        "Lead Listener",
        "Mods",
        "Admins",
        # staff words anywhere in the name
        "Mod Alice",
        "Alice Mod",
        "Admin Bob",
        "AdminBob",
        "Listener Kim",
        "Staff Member",
        # look-alikes
        "m0d",
        "M0D",
        "rnod",
        "Adm1n",
        "adm!n",
        "@dmin",
        "4dmin",
        "\u0410dmin",  # Cyrillic A
        "\u0430dm\u0456n",  # Cyrillic a and i
        "\u039c\u039fD",  # MOD with Greek Mu and Omicron
        "Mo\u200bd",  # zero-width space
        "M\u00f6d",  # diaeresis
        "\uff2d\uff4f\uff44",  # fullwidth
        "\U0001d40c\U0001d428\U0001d41d",  # mathematical bold
        "\u24b6\u24d3\u24dc\u24d8\u24dd",  # circled letters
        "\u1d2c\u1d48\u1d50\u2071\u207f",  # superscript letters
        "a\u0332d\u0332m\u0332i\u0332n\u0332",  # combining low line
        "5erver",
        "$y$tem",
        "Supp0rt",
        "R00t",
        "Moderat0r",
        "Moderater",  # one edit from a long staff word
        "Admnistrator",
        "Chat5upport",
        "Lis7ener",
        # run together with separators
        "a d m i n",
        "M.O.D",
        "ad-min",
        "S e r v e r",
    ],
)
def test_reserved_names_and_look_alikes_are_refused(name: str) -> None:
    assert is_reserved(name), name


@pytest.mark.parametrize(
    "name",
    [
        "Quiet Otter",
        "Modest Owl",
        "Serverin",
        "Servers Rule Otter",
        "Modern Otter",
        "Modem",
        "Model Citizen",
        "Mode",
        "Admiral",
        "Administration Fan",
        "Stafford",
        "Staffa",
        "Rooted",
        "Root Beer",
        "Tree Root",
        "Solar System",
        "Nervous System",
        "Server Otter",
        "Need Support",
        "Peer Support",
        "Supportive Friend",
        "Listening Ear",
        "Listen",
        "Moderate Weather",
        "Moderation Fan",
        "Modi",
        "Sysiphus",
        "Adam",
        "Admire",
        "Mo Dest",
        "Serve Rin",
        "Helpful Hedgehog",
        "Systematic Sam",
        "",
        "2",
        "...",
    ],
)
def test_ordinary_names_are_not_refused(name: str) -> None:
    assert not is_reserved(name), name


@given(st.sampled_from(sorted(RESERVED_NAMES)), st.integers(min_value=0, max_value=999))
def test_reserved_word_with_a_number_is_reserved(word: str, n: int) -> None:
    assert is_reserved(f"{word}{n}")
    assert is_reserved(f"{word} {n}")
    assert is_reserved(f"{n}_{word}")


def test_within_one_edit() -> None:
    one = within_one_edit
    assert one("moderator", "moderator")
    assert one("moderator", "moderater")
    assert one("moderator", "modeartor")  # transposition
    assert one("moderator", "moderato")
    assert one("moderator", "mmoderator")
    assert not one("moderator", "moderate")
    assert not one("moderator", "modern")
