"""Text normalisation: applied once, on the way in, to everything a person types.

Removes what could disguise a message or its sender on any interface: ANSI/terminal
escape sequences, control characters (a newline is kept where the caller allows it),
and the bidirectional-override and invisible formatting characters.
"""

from __future__ import annotations

import re
import unicodedata

# CSI (ESC [ ... final), OSC (ESC ] ... BEL/ST), and any other two-byte ESC sequence.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# Bidi controls (embeddings, overrides, isolates, marks) and zero-width/invisible characters.
_INVISIBLE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c\u180e\u00ad"
)


def _keep(char: str, keep_newlines: bool) -> bool:
    if char == "\n":
        return keep_newlines
    if char == "\t":
        return True
    if char in _INVISIBLE:
        return False
    category = unicodedata.category(char)
    # Cc: controls; Cf: format chars (bidi etc.); Cs: lone surrogates; Co/Cn: private/unassigned
    # are allowed (emoji sequences use Cf ZWJ, which we drop; the emoji still show).
    return category not in ("Cc", "Cf", "Cs")


def clean(text: str, *, keep_newlines: bool = True) -> str:
    """Return `text` without escapes, controls and bidi tricks; tabs become spaces.

    Runs of blank lines collapse to one and the result is stripped, so a message cannot
    be padded out to push others off a screen.
    """
    text = _ANSI.sub("", text)
    text = "".join(c for c in text if _keep(c, keep_newlines)).replace("\t", " ")
    if keep_newlines and "\n" in text:
        lines = [line.rstrip() for line in text.split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return text.strip()


def clean_name(text: str) -> str:
    """A display name: one line, spaces collapsed, NFC so equal names compare equal."""
    text = unicodedata.normalize("NFC", clean(text, keep_newlines=False))
    return " ".join(text.split())


def within_one_edit(a: str, b: str) -> bool:
    """Optimal string alignment distance of at most 1 (a typo, or a swap): look-alike
    staff names and misspelt crisis phrases are both caught with it."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    if la > lb:
        a, b = b, a
    # b is one longer: deleting one character of b gives a.
    return any(b[:i] + b[i + 1 :] == a for i in range(len(b)))
