"""Crisis phrase matching: does a message suggest its author may be in danger?

Pure and I/O-free: the phrase list (a file, or the packaged one) is read by
chatsupport/loading.py. The core calls ``matcher.matches(text)`` on each accepted
message; on a match it sends the author a private resources notice and alerts
moderators and listeners. The message is delivered as usual either way, so a false
positive costs a kind notice, and a false negative costs a missed chance: the list
leans towards matching.

How a message is matched (docs/crisis-resources.md says the same for operators):

1. Normalise (``tokens``): NFKC, casefold, drop invisible characters and accents;
   drop apostrophes ("don't" -> "dont"); cut into words at anything that is not a
   letter or digit; read digits and ``@ $`` inside words as letters ("k1ll",
   "$uicide"); let a run of one letter count once ("killll" -> "kil", "die" =
   "diiie"); merge a few spellings (``_REWRITES``: wanna -> want to, do not ->
   dont, kms -> kill myself...).
2. Phrases from the list are normalised the same way, so the list needs no
   spelling variants.
3. A phrase matches where its words appear in a row in the message. A message word
   matches a phrase word if equal, or, for phrase words of six letters or more,
   one typo away (insert, delete, substitute, swap two neighbours) while keeping
   the first letter ("suicde", "overdsoe"), unless the message word is a different
   common English word (``_NOT_TYPOS``: "overdoes" is not a typo of "overdose").
4. Negative phrases ("!die laughing") discard any match they overlap.

Idioms like "this traffic is killing me", "I could die laughing", "kill the
process" or "dying to see the film" do not match because the list holds no bare
"die", "dying" or "kill": only phrases about oneself.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .text import within_one_edit

__all__ = ["CrisisMatcher", "PhraseListError", "tokens"]

_MIN_FUZZY_LEN = 6  # phrase words at least this long (after folding) allow one typo

_APOSTROPHES = "'\u2019\u2018\u02bc\u0060\u00b4\u2032"
_WORD = re.compile(r"[^\W_]+(?:[@$][^\W_]*)*|[@$][^\W_]+", re.UNICODE)
_REPEATS = re.compile(r"(.)\1+")
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)

# Spellings merged before matching, on folded words (repeats already collapsed).
# Keys are written plainly; they are folded when the table is built.
_REWRITE_SOURCE: dict[tuple[str, ...], tuple[str, ...]] = {
    ("wanna",): ("want", "to"),
    ("wana",): ("want", "to"),
    ("gonna",): ("going", "to"),
    ("gotta",): ("got", "to"),
    ("tryna",): ("trying", "to"),
    ("imma",): ("im", "going", "to"),
    ("ima",): ("im", "going", "to"),
    ("i", "am"): ("im",),
    ("iam",): ("im",),
    ("do", "not"): ("dont",),
    ("dnt",): ("dont",),
    ("does", "not"): ("doesnt",),
    ("did", "not"): ("didnt",),
    ("can", "not"): ("cant",),
    ("cannot",): ("cant",),
    ("will", "not"): ("wont",),
    ("my", "self"): ("myself",),
    ("any", "more"): ("anymore",),
    ("no", "one"): ("noone",),
    ("selfharm",): ("self", "harm"),
    ("kms",): ("kill", "myself"),
    ("u",): ("you",),
    ("ur",): ("your",),
    ("2",): ("to",),
}

# Common English words one typo away from a phrase word: a different word, not a
# typo ("overdoes" is not "overdose"). Found by running every word of a
# 100,000-word English list through the matcher; inflections that keep the meaning
# ("suicides", "wrist", "overdoses") are left out so that they still match.
_NOT_TYPOS_TEXT = """
    bride bridger bridget bridle
    buried burner burnet burped burping burying burred burring
    cating citing cubing cueing cuffing cuing culling cumming cunning cupping curing cussing
    enduing
    handing hinging
    hamming harding haring harking harping harrying
    hunting hurling hurtling hurrying
    keeling kidding kilning kipling kissing kiting
    liking liming lining loving
    noshing notching noting
    overdoes overdone overdoing
    tabbing tacking tagging talking taming tanning tanking taping taring tasking
    tatting taxing toking
    wafting waiting waning wanking wasting wailing waiving whiting whitting witting writing
    wafted waited waned wanked wasted wonted
    waists whists wrests writs
    sallow shallow
    caking choking cocking coding cooing coking cooling coming coning conking coping
    coring corking cowing crooking
    paying placing planing plating plying praying
    rubbing ruffing ruing ruining ruling rutting
    saving shading shagging shaking shaming shaping sharing shoving slaving staving
    lilting linting listing lofting
    wording worming worrying
    exorcising landon lyndon patents milion minion
"""


class PhraseListError(ValueError):
    """A phrase list that cannot be used (unreadable, empty, a phrase with no words)."""


def _fold_word(word: str) -> str:
    if not word.isalpha() and any(ch.isalpha() for ch in word):
        word = word.translate(_LEET)
    word = word.replace("@", "a").replace("$", "s")
    return _REPEATS.sub(r"\1", word)


def _fold_key(words: Sequence[str]) -> tuple[str, ...]:
    return tuple(_fold_word(w) for w in words)


_REWRITES: dict[tuple[str, ...], tuple[str, ...]] = {
    _fold_key(k): _fold_key(v) for k, v in _REWRITE_SOURCE.items()
}
_MAX_REWRITE_LEN = max(len(k) for k in _REWRITES)
_NOT_TYPOS = frozenset(_fold_word(w) for w in _NOT_TYPOS_TEXT.split())


def _raw_words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).casefold()
    kept: list[str] = []
    for ch in unicodedata.normalize("NFD", text):
        cat = unicodedata.category(ch)
        if cat in ("Mn", "Me", "Cf") or ch in _APOSTROPHES:
            continue
        kept.append(ch)
    return _WORD.findall(unicodedata.normalize("NFC", "".join(kept)))


def tokens(text: str) -> list[str]:
    """The normalised words of *text*, as the matcher compares them."""
    words = [_fold_word(w) for w in _raw_words(text)]
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(_MAX_REWRITE_LEN, len(words) - i), 0, -1):
            replacement = _REWRITES.get(tuple(words[i : i + size]))
            if replacement is not None:
                out.extend(replacement)
                i += size
                break
        else:
            out.append(words[i])
            i += 1
    return out


@dataclass(frozen=True, slots=True)
class _Phrase:
    source: str
    words: tuple[str, ...]
    negative: bool


class CrisisMatcher:
    """Matches messages against a crisis phrase list (see the module docstring).

    *phrases* are written as in the phrase file: one phrase per item; an item
    starting with ``!`` is a negative phrase. Blank items and ``#`` comments are
    skipped, so the lines of a file can be passed as they are.
    """

    __slots__ = ("_by_first", "_fuzzy_vocab", "_match_word", "_phrases", "_vocab")

    def __init__(self, phrases: Iterable[str]) -> None:
        parsed: list[_Phrase] = []
        for number, line in enumerate(phrases, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            negative = text.startswith("!")
            body = text[1:].strip() if negative else text
            words = tuple(tokens(body))
            if not words:
                raise PhraseListError(f"phrase {number} ({line.strip()!r}) has no words")
            parsed.append(_Phrase(body, words, negative))
        if not any(not p.negative for p in parsed):
            raise PhraseListError("the phrase list has no (positive) phrases")
        self._phrases: tuple[_Phrase, ...] = tuple(parsed)
        by_first: dict[str, list[_Phrase]] = {}
        for phrase in parsed:
            by_first.setdefault(phrase.words[0], []).append(phrase)
        self._by_first = {k: tuple(v) for k, v in by_first.items()}
        self._vocab = frozenset(w for p in parsed for w in p.words)
        self._fuzzy_vocab: dict[str, tuple[str, ...]] = {}
        for word in self._vocab:
            if len(word) >= _MIN_FUZZY_LEN:
                self._fuzzy_vocab.setdefault(word[0], ())
                self._fuzzy_vocab[word[0]] += (word,)
        self._match_word = functools.lru_cache(maxsize=16384)(self._match_word_uncached)

    # -- queries ------------------------------------------------------------

    @property
    def phrases(self) -> tuple[str, ...]:
        """The positive phrases, as written in the list."""
        return tuple(p.source for p in self._phrases if not p.negative)

    def matches(self, text: str) -> bool:
        """True if *text* contains a crisis phrase not covered by a negative one."""
        return self.find(text) is not None

    def find(self, text: str) -> str | None:
        """The first phrase (as written in the list) that *text* matches, or None."""
        words = tokens(text)
        positives: list[tuple[int, int, _Phrase]] = []
        negatives: list[tuple[int, int]] = []
        for start in range(len(words)):
            for first in self._match_word(words[start]):
                for phrase in self._by_first.get(first, ()):
                    end = start + len(phrase.words)
                    if end > len(words) or not self._match_rest(phrase, words, start):
                        continue
                    if phrase.negative:
                        negatives.append((start, end))
                    else:
                        positives.append((start, end, phrase))
        for start, end, phrase in positives:
            if not any(n_start < end and start < n_end for n_start, n_end in negatives):
                return phrase.source
        return None

    # -- internals ----------------------------------------------------------

    def _match_rest(self, phrase: _Phrase, words: list[str], start: int) -> bool:
        for offset in range(1, len(phrase.words)):
            if phrase.words[offset] not in self._match_word(words[start + offset]):
                return False
        return True

    def _match_word_uncached(self, word: str) -> frozenset[str]:
        """The phrase words that message word *word* counts as."""
        found = {word} & self._vocab
        if len(word) >= _MIN_FUZZY_LEN - 1 and word not in _NOT_TYPOS:
            for candidate in self._fuzzy_vocab.get(word[0], ()):
                if candidate != word and within_one_edit(word, candidate):
                    found.add(candidate)
        return frozenset(found)
