"""Look-alike names: a comparison key, mixed-script detection and reserved names.

Pure functions, no I/O. The core calls them when a person picks a name:

- ``skeleton(name)`` is the key names are compared by. Two names that look alike
  (case, width, accents, invisible characters, Cyrillic or Greek letters standing in
  for Latin ones, digits standing in for letters, ``rn`` for ``m``...) get the same
  key, so "Quiet 0tter" or "Quiet Otter" with a Cyrillic O cannot join while "Quiet
  Otter" is online. ``skeleton(a) == skeleton(b)`` also holds whenever
  ``a.casefold() == b.casefold()``, so the key serves for case-insensitive
  uniqueness too.
- ``mixed_script(name)`` is true when one word mixes letters of several scripts
  (Latin with Cyrillic, Greek, Armenian...): almost always a spoof.
- ``is_reserved(name)`` refuses names that pose as staff or as the server.
- ``loose_key(name)`` is what a name is unique by: the skeleton without spaces,
  punctuation and a plural ``s``; ``deletions(key)`` lets names one letter apart
  be found by lookup (names.py holds both for each person present).
- ``HelpLines(names).poses(name)`` refuses names that pose as a help line
  ("Samaritans"); the names come from the resources file, read by the caller.

The rules, written down once (tests in tests/core/test_confusables.py keep them):

Skeleton
  1. NFKC, casefold, NFKC again (until stable): width, ligatures, math letters,
     circled letters, case.
  2. Invisible characters are dropped: format characters (category Cf: zero-width
     space/joiners, bidi marks, soft hyphen, BOM, tags), variation selectors, Hangul
     fillers, the combining grapheme joiner, braille blank.
  3. Combining marks are dropped after Latin, Greek, Cyrillic and script-neutral
     characters ("Ottér" -> "otter"); after other scripts they are kept, where they
     are vowels and not decoration.
  4. Homoglyphs are folded to one Latin letter by a hand-written table
     (``_FOLD_SOURCE``): Cyrillic, Greek and Armenian look-alikes, a few Latin
     variants (l with stroke, o with stroke, dotless i...), and digits and
     symbols (0 -> o, 1 | ! i I l -> l, 2 -> z, 3 -> e, 4 @ -> a, 5 $ -> s,
     6 8 -> b, 7 -> t, 9 -> g). Because ``I`` looks like ``l`` and ``i`` equals ``I``
     ignoring case, ``i`` folds to ``l`` too: the key is not meant to be read.
  5. Letter pairs that render like one letter are folded: ``rn`` -> ``m``,
     ``vv`` -> ``w``.
  6. Whitespace runs become one space; leading and trailing whitespace goes.
  The key is idempotent: ``skeleton(skeleton(x)) == skeleton(x)``.

Reserved names
  The name is cut into words: at whitespace and punctuation, at camelCase humps
  ("TheModerator"), and each word is also tried without leading/trailing digits
  ("Admin2"). Each word and the name run together without separators ("a d m i n")
  are compared after the skeleton fold, so "m0d", "Admin" with a Cyrillic A and "rnod" count.
  A name is reserved when
  - any word is, or is made only of, staff words (mod, moderator, admin,
    administrator, sysadmin, sysop, staff, listener, chatsupport, volunteer,
    counsellor, counselor, therapist, helpline, hotline, with a plural "s")
    and filler words (the, real, official, team, ...): "Mod Alice", "the_moderator",
    "ChatSupportTeam", "Listener Kim" are refused; or
  - the whole name is made only of reserved words (the staff words and also system,
    server, root, support, crisis), filler words and digits: "Server", "Support Team",
    "System 2" are refused, while "Solar System", "Need Support", "Root Beer" and
    "Server Otter" are fine; or
  - a word is one edit away from a staff word of 8 letters or more (listener,
    moderator, volunteer, therapist, ...), also in the plural: "Moderater", "Listner".
  A reserved word inside a longer word does not count: "Modest Owl", "Serverin",
  "Administration Fan" and "Rooted" are fine.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from .text import within_one_edit

__all__ = [
    "FILLER_WORDS",
    "FUZZY_MIN",
    "RESERVED_NAMES",
    "STAFF_WORDS",
    "HelpLines",
    "are_confusable",
    "deletions",
    "is_reserved",
    "loose_key",
    "mixed_script",
    "skeleton",
]

# ---------------------------------------------------------------------------
# Invisible characters
# ---------------------------------------------------------------------------

# Default-ignorable code points that are not in category Cf (which is removed
# wholesale): combining grapheme joiner, Hangul fillers, Khmer inherent vowels,
# Mongolian free variation selectors, variation selectors, braille blank.
_INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
)


def _is_invisible(ch: str) -> bool:
    if unicodedata.category(ch) == "Cf":
        return True
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _INVISIBLE_RANGES)


# ---------------------------------------------------------------------------
# Scripts (approximated from character names: the stdlib has no Script property)
# ---------------------------------------------------------------------------

# Name prefixes of letters, longest first where one is a prefix of another.
_SCRIPT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("LATIN", "Latin"),
    ("CYRILLIC", "Cyrillic"),
    ("GREEK", "Greek"),
    ("COPTIC", "Coptic"),
    ("ARMENIAN", "Armenian"),
    ("GEORGIAN", "Georgian"),
    ("CHEROKEE", "Cherokee"),
    ("HEBREW", "Hebrew"),
    ("ARABIC", "Arabic"),
    ("SYRIAC", "Syriac"),
    ("THAANA", "Thaana"),
    ("NKO", "Nko"),
    ("DEVANAGARI", "Devanagari"),
    ("BENGALI", "Bengali"),
    ("GURMUKHI", "Gurmukhi"),
    ("GUJARATI", "Gujarati"),
    ("ORIYA", "Oriya"),
    ("TAMIL", "Tamil"),
    ("TELUGU", "Telugu"),
    ("KANNADA", "Kannada"),
    ("MALAYALAM", "Malayalam"),
    ("SINHALA", "Sinhala"),
    ("THAI", "Thai"),
    ("LAO", "Lao"),
    ("TIBETAN", "Tibetan"),
    ("MYANMAR", "Myanmar"),
    ("ETHIOPIC", "Ethiopic"),
    ("KHMER", "Khmer"),
    ("MONGOLIAN", "Mongolian"),
    ("HIRAGANA", "Han"),
    ("KATAKANA", "Han"),
    ("HALFWIDTH KATAKANA", "Han"),
    ("BOPOMOFO", "Han"),
    ("CJK", "Han"),
    ("HANGUL", "Han"),
    ("CANADIAN SYLLABICS", "Canadian"),
    ("RUNIC", "Runic"),
    ("OGHAM", "Ogham"),
    ("TIFINAGH", "Tifinagh"),
    ("VAI", "Vai"),
    ("LISU", "Lisu"),
)

# Scripts that may share a word with Latin without raising a flag (UTS #39
# "highly restrictive": Latin + Han + Hiragana + Katakana, Latin + Han + Hangul,
# Latin + Han + Bopomofo; we merge the East Asian scripts into one "Han").
_COMPATIBLE_WITH_LATIN = frozenset({"Han"})


@functools.lru_cache(maxsize=4096)
def _script(ch: str) -> str | None:
    """The script of a letter, ``None`` for digits, punctuation, marks, symbols."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    name = unicodedata.name(ch, "")
    for prefix, script in _SCRIPT_PREFIXES:
        if name.startswith(prefix):
            return script
    if name.startswith(("FULLWIDTH LATIN", "MODIFIER LETTER SMALL", "MODIFIER LETTER CAPITAL")):
        return "Latin"
    if unicodedata.category(ch) == "Lm":
        return None  # modifier letters (apostrophe-like marks) belong to no script
    return "Other:" + name.split(" ", 1)[0] if name else "Other"


def mixed_script(name: str) -> bool:
    """True if a word of *name* has letters from more than one script.

    Words are split at whitespace, so "Саша Otter" (a Cyrillic and a Latin word) is
    not mixed, while "Otter" spelt with a Cyrillic O is. Latin mixed with the East
    Asian scripts (Han, Kana, Hangul, Bopomofo) is allowed, as in UTS #39's highly
    restrictive profile. Digits, punctuation and marks belong to no script.
    The name is NFKC-normalised first, so fullwidth or mathematical Latin is Latin.
    """
    text = unicodedata.normalize("NFKC", name)
    for word in text.split():
        scripts = {s for s in map(_script, word) if s is not None}
        if len(scripts) <= 1:
            continue
        if scripts - _COMPATIBLE_WITH_LATIN <= {"Latin"}:
            continue
        return True
    return False


# ---------------------------------------------------------------------------
# Homoglyph folding
# ---------------------------------------------------------------------------

# Applied after casefolding, so only lowercase keys are needed. Where a capital and
# its lowercase look like different Latin letters (Greek capital eta looks like H,
# small eta like n), the capital wins: capitals are what an impostor copies ("MOD"
# in Greek capitals). Every value is a plain ASCII lowercase letter and no value is
# itself a key (tests check it). Non-ASCII keys are escaped so that this file shows
# what it means.
_FOLD_SOURCE: dict[str, str] = {
    # digits and symbols
    "0": "o",
    "1": "l",
    "|": "l",
    "!": "l",
    "i": "l",
    "2": "z",
    "3": "e",
    "4": "a",
    "@": "a",
    "5": "s",
    "$": "s",
    "6": "b",
    "7": "t",
    "8": "b",
    "9": "g",
    # Latin variants without a canonical decomposition
    "\u0131": "l",  # latin small letter dotless i
    "\u0269": "l",  # latin small letter iota
    "\u01c0": "l",  # latin letter dental click
    "\u0142": "l",  # latin small letter l with stroke
    "\u019a": "l",  # latin small letter l with bar
    "\u026b": "l",  # latin small letter l with middle tilde
    "\u0251": "a",  # latin small letter alpha
    "\u0250": "a",  # latin small letter turned a
    "\u0180": "b",  # latin small letter b with stroke
    "\u0253": "b",  # latin small letter b with hook
    "\u0188": "c",  # latin small letter c with hook
    "\u023c": "c",  # latin small letter c with stroke
    "\u0111": "d",  # latin small letter d with stroke
    "\u0257": "d",  # latin small letter d with hook
    "\u00f0": "d",  # latin small letter eth
    "\u0256": "d",  # latin small letter d with tail
    "\u0247": "e",  # latin small letter e with stroke
    "\u025b": "e",  # latin small letter open e
    "\u0192": "f",  # latin small letter f with hook
    "\u0261": "g",  # latin small letter script g
    "\u01e5": "g",  # latin small letter g with stroke
    "\u0260": "g",  # latin small letter g with hook
    "\u0127": "h",  # latin small letter h with stroke
    "\u0266": "h",  # latin small letter h with hook
    "\u0268": "l",  # latin small letter i with stroke
    "\u0237": "j",  # latin small letter dotless j
    "\u0249": "j",  # latin small letter j with stroke
    "\u0199": "k",  # latin small letter k with hook
    "\u0271": "m",  # latin small letter m with hook
    "\u0272": "n",  # latin small letter n with left hook
    "\u019e": "n",  # latin small letter n with long right leg
    "\u014b": "n",  # latin small letter eng
    "\u00f8": "o",  # latin small letter o with stroke
    "\u0275": "o",  # latin small letter barred o
    "\u1d0f": "o",  # latin letter small capital o
    "\u01a5": "p",  # latin small letter p with hook
    "\u024b": "q",  # latin small letter q with hook tail
    "\u02a0": "q",  # latin small letter q with hook
    "\u024d": "r",  # latin small letter r with stroke
    "\u027d": "r",  # latin small letter r with tail
    "\u0282": "s",  # latin small letter s with hook
    "\u023f": "s",  # latin small letter s with swash tail
    "\u0167": "t",  # latin small letter t with stroke
    "\u01ad": "t",  # latin small letter t with hook
    "\u0288": "t",  # latin small letter t with retroflex hook
    "\u0289": "u",  # latin small letter u bar
    "\u028b": "v",  # latin small letter v with hook
    "\u028c": "v",  # latin small letter turned v
    "\u024f": "y",  # latin small letter y with stroke
    "\u01b4": "y",  # latin small letter y with hook
    "\u01b6": "z",  # latin small letter z with stroke
    "\u0225": "z",  # latin small letter z with hook
    "\u0290": "z",  # latin small letter z with retroflex hook
    # Cyrillic
    "\u0430": "a",  # cyrillic small letter a
    "\u0432": "b",  # cyrillic small letter ve
    "\u044c": "b",  # cyrillic small letter soft sign
    "\u0441": "c",  # cyrillic small letter es
    "\u0501": "d",  # cyrillic small letter komi de
    "\u0435": "e",  # cyrillic small letter ie
    "\u0454": "e",  # cyrillic small letter ukrainian ie
    "\u04bb": "h",  # cyrillic small letter shha
    "\u043d": "h",  # cyrillic small letter en
    "\u0456": "l",  # cyrillic small letter byelorussian-ukrainian i
    "\u04cf": "l",  # cyrillic small letter palochka
    "\u0458": "j",  # cyrillic small letter je
    "\u043a": "k",  # cyrillic small letter ka
    "\u043c": "m",  # cyrillic small letter em
    "\u043e": "o",  # cyrillic small letter o
    "\u0440": "p",  # cyrillic small letter er
    "\u051b": "q",  # cyrillic small letter qa
    "\u0455": "s",  # cyrillic small letter dze
    "\u0442": "t",  # cyrillic small letter te
    "\u0443": "y",  # cyrillic small letter u
    "\u04af": "y",  # cyrillic small letter straight u
    "\u051d": "w",  # cyrillic small letter we
    "\u0445": "x",  # cyrillic small letter ha
    "\u0475": "v",  # cyrillic small letter izhitsa
    "\u025c": "e",  # latin small letter reversed open e
    # Greek
    "\u03b1": "a",  # greek small letter alpha
    "\u03b2": "b",  # greek small letter beta
    "\u03b5": "e",  # greek small letter epsilon
    "\u03b6": "z",  # greek small letter zeta
    "\u03b7": "h",  # greek small letter eta
    "\u03b9": "l",  # greek small letter iota
    "\u03ba": "k",  # greek small letter kappa
    "\u03bc": "m",  # greek small letter mu
    "\u03bd": "n",  # greek small letter nu
    "\u03bf": "o",  # greek small letter omicron
    "\u03c1": "p",  # greek small letter rho
    "\u03c4": "t",  # greek small letter tau
    "\u03c5": "y",  # greek small letter upsilon
    "\u03c7": "x",  # greek small letter chi
    "\u03b3": "y",  # greek small letter gamma
    "\u03c9": "w",  # greek small letter omega
    "\u03f3": "j",  # greek letter yot
    # Armenian
    "\u0585": "o",  # armenian small letter oh
    "\u057d": "u",  # armenian small letter seh
    "\u0578": "n",  # armenian small letter vo
    "\u0570": "h",  # armenian small letter ho
    "\u0581": "g",  # armenian small letter co
    "\u0566": "q",  # armenian small letter za
}

_FOLD = str.maketrans(_FOLD_SOURCE)

# Pairs that render like one letter. Replacing them cannot create a new pair.
_PAIRS: tuple[tuple[str, str], ...] = (("rn", "m"), ("vv", "w"))

# Scripts after which combining marks are decoration and are dropped.
_STRIP_MARKS_AFTER = frozenset({"Latin", "Greek", "Cyrillic", None})

_MAX_NORMALISE_ROUNDS = 4


def _normalise_case(text: str) -> str:
    """NFKC + casefold, repeated until stable (casefold can un-normalise)."""
    for _ in range(_MAX_NORMALISE_ROUNDS):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        if folded == text:
            break
        text = folded
    return text


def _drop_invisibles_fold_glyphs(text: str) -> str:
    """Decompose, fold homoglyphs, drop invisibles and decorative marks."""
    out: list[str] = []
    base_script: str | None = None
    for ch in unicodedata.normalize("NFD", text).translate(_FOLD):
        if _is_invisible(ch):
            continue
        if unicodedata.category(ch) in ("Mn", "Me"):
            if base_script in _STRIP_MARKS_AFTER:
                continue
        else:
            base_script = _script(ch)
        out.append(ch)
    text = unicodedata.normalize("NFC", "".join(out))
    for pair, letter in _PAIRS:
        text = text.replace(pair, letter)
    return text


# A name is skeletonised when it is claimed, checked or looked up (never per message): the
# cache serves repeats (a room's names looked up by a moderator's command). At 8192 entries
# it held ~1.7 MB once 10,000 people had come (~170 B per idle connection); 1024 keep
# the repeats and ~200 KB.
@functools.lru_cache(maxsize=1024)
def skeleton(name: str) -> str:
    """The look-alike key of *name*: equal keys mean the names look alike.

    Never raises for any ``str``; idempotent; ``skeleton(n) == skeleton(n.casefold())``.
    """
    text = _normalise_case(name)
    text = _drop_invisibles_fold_glyphs(text)
    # Folding can bring back nothing that the steps above would change: all
    # targets are ASCII lowercase letters. Only whitespace is left to tidy.
    return " ".join(text.split())


def are_confusable(a: str, b: str) -> bool:
    """True if names *a* and *b* look alike (or differ only in case)."""
    return skeleton(a) == skeleton(b)


# ---------------------------------------------------------------------------
# Reserved names
# ---------------------------------------------------------------------------

#: Words that pose as staff wherever they stand in a name.
STAFF_WORDS: frozenset[str] = frozenset(
    {
        "mod",
        "moderator",
        "admin",
        "administrator",
        "sysadmin",
        "sysop",
        "staff",
        "listener",
        "chatsupport",
        "volunteer",
        "counsellor",
        "counselor",
        "therapist",
        "helpline",
        "hotline",
    }
)

#: Words reserved only when they make up the whole name (with fillers, digits).
_WHOLE_NAME_WORDS: frozenset[str] = frozenset({"system", "server", "root", "support", "crisis"})

#: Every reserved word. ``is_reserved`` also refuses their look-alikes.
RESERVED_NAMES: frozenset[str] = STAFF_WORDS | _WHOLE_NAME_WORDS

#: Decorations that do not make a reserved word into an ordinary name.
FILLER_WORDS: frozenset[str] = frozenset(
    {
        "the",
        "a",
        "an",
        "real",
        "true",
        "official",
        "team",
        "crew",
        "chat",
        "bot",
        "account",
        "user",
        "your",
        "ur",
        "our",
        "my",
        "da",
        "im",
        "i",
        "am",
        "its",
        "is",
        "on",
        "duty",
        "head",
        "lead",
        "chief",
        "main",
        "super",
        "service",
        "services",
        "help",
        "desk",
        "message",
        "msg",
        "notice",
        "info",
        "alert",
        "line",
        "x",
        "xx",
        "xxx",
    }
)

# Within one word, single-letter fillers other than "x" would make too much match
# ("Staffa"); as separate words they are fine ("A Mod").
_IN_WORD_FILLERS = frozenset(f for f in FILLER_WORDS if len(f) > 1 or f == "x")

# Long staff words also refuse a one-letter slip ("Listner", "Moderater", "Therapsit").
_LONG_STAFF_WORDS = frozenset(w for w in STAFF_WORDS if len(w) >= 8)


def _folded(words: frozenset[str]) -> frozenset[str]:
    out = set()
    for word in words:
        key = skeleton(word)
        out.add(key)
        out.add(key + "s")
    return frozenset(out)


_STAFF_KEYS = _folded(STAFF_WORDS)
_RESERVED_KEYS = _folded(RESERVED_NAMES)
_FILLER_KEYS = frozenset(skeleton(w) for w in FILLER_WORDS)
_IN_WORD_FILLER_KEYS = frozenset(skeleton(w) for w in _IN_WORD_FILLERS)
_LONG_STAFF_KEYS = frozenset(skeleton(w) for w in _LONG_STAFF_WORDS)
_MAX_VOCAB_LEN = max(len(w) for w in _RESERVED_KEYS | _FILLER_KEYS)

# Characters that join a word (letters, digits, and the symbols the fold reads as
# letters); everything else separates words.
_WORD_SYMBOLS = frozenset("@$!|")
_EDGE_DIGITS = re.compile(r"^\d+|\d+$")


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in _WORD_SYMBOLS


def _words(name: str) -> list[str]:
    """Cut *name* into words, keeping their original case for camelCase."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if not _is_invisible(ch))
    words: list[str] = []
    current: list[str] = []
    for ch in text:
        if _is_word_char(ch) or unicodedata.category(ch) in ("Mn", "Me"):
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return [part for word in words for part in _split_humps(word)]


def _split_humps(word: str) -> list[str]:
    """Split camelCase: "TheModerator" -> ["The", "Moderator"]; "ADMIN" stays whole."""
    parts: list[str] = []
    start = 0
    for i in range(1, len(word)):
        if word[i].isupper() and word[i - 1].islower():
            parts.append(word[start:i])
            start = i
    parts.append(word[start:])
    return parts


def _composed_of(key: str, words: frozenset[str], fillers: frozenset[str]) -> tuple[bool, bool]:
    """Can *key* be cut into vocabulary words? Returns (cut found, uses a word).

    A cut that uses at least one of *words* is preferred.
    """
    n = len(key)
    # best[i]: None = position unreachable, False = reachable by fillers only,
    # True = reachable using at least one of *words*.
    best: list[bool | None] = [None] * (n + 1)
    best[0] = False
    for i in range(n):
        state = best[i]
        if state is None:
            continue
        for j in range(i + 1, min(n, i + _MAX_VOCAB_LEN) + 1):
            piece = key[i:j]
            if piece in words:
                best[j] = True
            elif piece in fillers and best[j] is None:
                best[j] = state
            elif piece in fillers and state:
                best[j] = True
    end = best[n]
    return end is not None, bool(end)


def _word_variants(word: str) -> set[str]:
    """The keys a word is compared by: as is, and without edge digits."""
    variants = {skeleton(word)}
    stripped = _EDGE_DIGITS.sub("", word)
    if stripped and stripped != word:
        variants.add(skeleton(stripped))
    stripped_again = _EDGE_DIGITS.sub("", stripped)
    if stripped_again and stripped_again != stripped:
        variants.add(skeleton(stripped_again))
    variants.discard("")
    return variants


def _is_staff_word(word: str) -> bool:
    for key in _word_variants(word):
        found, uses = _composed_of(key, _STAFF_KEYS, _IN_WORD_FILLER_KEYS | _RESERVED_KEYS)
        if found and uses:
            return True
        if len(key) >= 7 and any(_near(key, w) for w in _LONG_STAFF_KEYS):
            return True
    return False


def _near(key: str, word: str) -> bool:
    """One edit from `word`, also in the plural ("Listners")."""
    return within_one_edit(key, word) or (key.endswith("s") and within_one_edit(key[:-1], word))


def _is_reserved_or_filler_word(word: str) -> tuple[bool, bool]:
    """(word is only reserved words, fillers and digits; it uses a reserved word)."""
    if word.isdigit():
        return True, False
    best_found, best_uses = False, False
    for key in _word_variants(word):
        found, uses = _composed_of(key, _RESERVED_KEYS, _IN_WORD_FILLER_KEYS)
        if key in _FILLER_KEYS:
            found = True
        if found:
            best_found = True
            best_uses = best_uses or uses
    return best_found, best_uses


def is_reserved(name: str) -> bool:
    """True if *name* poses as staff or as the server (see the module docstring)."""
    words = _words(name)
    if not words:
        return False
    if any(_is_staff_word(w) for w in words):
        return True
    whole_found, whole_uses = True, False
    for word in words:
        found, uses = _is_reserved_or_filler_word(word)
        if not found:
            whole_found = False
            break
        whole_uses = whole_uses or uses
    if whole_found and whole_uses:
        return True
    # The name run together: "a d m i n", "M.O.D", "ad-min", "Sys Admin".
    joined = skeleton("".join(words))
    joined_trimmed = skeleton(_EDGE_DIGITS.sub("", "".join(words)))
    for key in {joined, joined_trimmed} - {""}:
        found, uses = _composed_of(key, _RESERVED_KEYS, _IN_WORD_FILLER_KEYS)
        if found and uses:
            return True
    return False


# ---------------------------------------------------------------------------
# Loose keys: what makes two names the same name to a reader
# ---------------------------------------------------------------------------


def loose_key(name: str) -> str:
    """The skeleton without spaces and punctuation, and without a plural ``s``: "KindOwl",
    "Kind-Owl", "Kind Owl." and "Kind Owls" all read as "Kind Owl" in a busy room."""
    compact = "".join(ch for ch in skeleton(name) if unicodedata.category(ch)[0] not in "PZ")
    if len(compact) > 3 and compact.endswith("s"):
        compact = compact[:-1]
    return compact


FUZZY_MIN = 5  # keys this long or longer are also one letter away from each other


def deletions(key: str) -> set[str]:
    """`key` with one character deleted, each way; for keys of FUZZY_MIN characters or more.

    Two keys one edit apart (a letter changed, added, dropped or two swapped) always share
    one of ``{key} | deletions(key)``: an index of these finds near names by lookup."""
    if len(key) < FUZZY_MIN:
        return set()
    return {key[:i] + key[i + 1 :] for i in range(len(key))}


class HelpLines:
    """Names nobody may take because they pose as a help line ("Samaritans", "Lifeline").

    Built once from the names in the resources file (the caller reads it; no I/O here).
    A name poses when, by `loose_key` and allowing one edit, the whole name is a line's
    name or one of its parts (cut at ``/ , ( )``), or a run of its words is a distinctive
    line name (`_IN_NAME_MIN` characters or more: "Samaritans Sam", "Lifeline Fan";
    "Shout Owl" and "Pieta Fox" stay free). Lookups go through an index of `deletions`,
    so the check costs the same however many lines there are.
    """

    _IN_NAME_MIN = 8

    def __init__(self, line_names: Iterable[str]) -> None:
        self._index: dict[str, set[str]] = {}
        self._distinctive: set[str] = set()
        for line in line_names:
            for part in {line, *re.split(r"[/,()]", line)}:
                key = loose_key(part)
                if len(key) < 4:
                    continue
                for variant in {key} | deletions(key):
                    self._index.setdefault(variant, set()).add(key)
                if len(key) >= self._IN_NAME_MIN:
                    self._distinctive.add(key)

    def _match(self, key: str) -> str | None:
        for variant in {key} | deletions(key):
            for line in self._index.get(variant, ()):
                if key == line or (len(line) >= FUZZY_MIN and within_one_edit(key, line)):
                    return line
        return None

    def poses(self, name: str) -> bool:
        if not self._index:
            return False
        if self._match(loose_key(name)) is not None:
            return True
        words = [loose_key(w) for w in _words(name)]
        for start in range(len(words)):
            for end in range(start + 1, len(words) + 1):
                line = self._match("".join(words[start:end]))
                if line in self._distinctive:
                    return True
        return False
