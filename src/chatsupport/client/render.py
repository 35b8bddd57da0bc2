"""How the terminal client lays out what arrives, by irssi/WeeChat conventions.

Pure functions over prompt_toolkit formatted text (lists of `(style, text)`); no I/O here.
Every line gets a `HH:MM` timestamp, a day marker comes before the first line of another day,
your own name in someone else's message is highlighted, and a line longer than the terminal
is wrapped at spaces with its continuation rows indented under the text (a word is split
only when it alone is wider than a row). The words of each line are the text interface's
(`transport/render_text.py`): this module only adds time, style and layout.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable
from datetime import date

import msgspec
from prompt_toolkit.data_structures import Size
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.output.vt100 import Vt100_Output
from prompt_toolkit.renderer import print_formatted_text
from prompt_toolkit.styles import Style
from prompt_toolkit.utils import get_cwidth

from ..core import events as ev
from ..transport.render_text import render

Fragments = list[tuple[str, str]]  # prompt_toolkit's (style, text) pairs

STYLE = Style.from_dict(
    {
        "time": "#8a8a8a",
        "day": "bold",
        "server": "bold",  # `*** ` lines: from the server itself
        "error": "#ff5f5f bold",  # `!! ` lines
        "mentioned": "bold",  # the speaker of a line that names you
        "mention": "reverse bold",  # your name in it
        "status": "reverse",  # the reconnecting line above the input
        "prompt": "#5fafd7 bold",  # (a colour: its trailing space is drawn too)
    }
)
MARKERS = {"*** ": "class:server", "!! ": "class:error", "-- ": ""}
MIN_TEXT = 20  # cells a continuation row keeps for text, however long the prefix


def timestamp(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts))


def day_line(day: date) -> Fragments:
    return [("class:day", f"-- Day changed to {day:%A} {day.day} {day:%B %Y}")]


def highlight(text: str, name: str) -> Fragments:
    """`text` with each whole-word occurrence of `name` (any case) marked as a mention."""
    if not name:
        return [("", text)]
    fragments: Fragments = []
    last = 0
    for found in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE):
        fragments += [("", text[last : found.start()]), ("class:mention", found.group())]
        last = found.end()
    fragments.append(("", text[last:]))
    return [f for f in fragments if f[1]]


def cells(fragments: Fragments) -> int:
    return sum(get_cwidth(text) for _, text in fragments)


def wrap(prefix: Fragments, body: Fragments, width: int) -> list[Fragments]:
    """`prefix` + `body` as rows of at most `width` cells, broken at spaces; continuation
    rows are indented under the body (or less, when the prefix is too wide to leave room)."""
    first = cells(prefix)
    indent = first if width - first >= MIN_TEXT else min(first, 2)
    rows: list[list[tuple[str, str]]] = [[]]
    room = max(1, width - first)
    for token in _tokens(body):
        wide = sum(get_cwidth(c) for _, c in token)
        if token[0][1] == " ":
            if wide <= room:
                rows[-1] += token
                room -= wide
            else:  # a break here: the spaces go with it
                rows.append([])
                room = max(1, width - indent)
            continue
        if wide > room and rows[-1]:
            _trim(rows[-1])
            rows.append([])
            room = max(1, width - indent)
        for char in token:  # fits, or (alone wider than a row) is split where it must be
            w = get_cwidth(char[1])
            if w > room and rows[-1]:
                rows.append([])
                room = max(1, width - indent)
            rows[-1].append(char)
            room -= w
    for row in rows:
        _trim(row)
    pad: Fragments = [("", " " * indent)] if indent else []
    return [prefix + _merge(rows[0])] + [pad + _merge(row) for row in rows[1:]]


def _tokens(body: Fragments) -> list[list[tuple[str, str]]]:
    """Runs of spaces and runs of everything else, one (style, char) pair per character."""
    tokens: list[list[tuple[str, str]]] = []
    for style, text in body:
        for char in text:
            space = char == " "
            if tokens and (tokens[-1][0][1] == " ") == space:
                tokens[-1].append((style, char))
            else:
                tokens.append([(style, char)])
    return tokens


def _trim(row: list[tuple[str, str]]) -> None:
    while row and row[-1][1] == " ":
        row.pop()


def _merge(chars: list[tuple[str, str]]) -> Fragments:
    merged: Fragments = []
    for style, char in chars:
        if merged and merged[-1][0] == style:
            merged[-1] = (style, merged[-1][1] + char)
        else:
            merged.append((style, char))
    return merged


class Screen:
    """Turns text lines and messages into rows for a terminal `width()` cells wide, minding
    the day of the last line shown."""

    def __init__(self, width: Callable[[], int], clock: Callable[[], float] = time.time) -> None:
        self.width = width
        self.clock = clock
        self.day = date.fromtimestamp(clock())  # the first line of today needs no marker

    def text(self, line: str) -> list[Fragments]:
        """A line of the text interface (`-- ...`, `!! ...`, `*** ...`), shown now."""
        marker = next((m for m in MARKERS if line.startswith(m)), "")
        style = MARKERS.get(marker, "")
        prefix = [(style, marker)] if marker else []
        return self._rows(self.clock(), prefix, [(style, line[len(marker) :])])

    def message(self, event: ev.Message, tag: str, mention: str) -> list[Fragments]:
        """A message (one row group per line of its text), time-stamped when it was said;
        `mention`, your name, is highlighted in it (empty: it is your own message)."""
        head = render(msgspec.structs.replace(event, text=""), tag) or "\n"
        speaker = head.rstrip("\n")
        rows: list[Fragments] = []
        for line in event.text.split("\n"):
            body = highlight(line, mention) if event.kind != "announce" else [("", line)]
            named = any(style == "class:mention" for style, _ in body)
            prefix = [("class:mentioned" if named else "", speaker)]
            rows += self._rows(event.ts, prefix, body)
        return rows

    def _rows(self, ts: float, prefix: Fragments, body: Fragments) -> list[Fragments]:
        rows: list[Fragments] = []
        day = date.fromtimestamp(ts)
        if day != self.day:
            self.day = day
            rows.append(day_line(day))
        stamp: Fragments = [("class:time", timestamp(ts) + " ")]
        return rows + wrap(stamp + prefix, body, max(1, self.width()))


def to_ansi(rows: list[Fragments]) -> str:
    """Rows as text with the terminal's own escape codes (its colour depth, NO_COLOR kept)."""
    buffer = io.StringIO()
    output = Vt100_Output(buffer, lambda: Size(rows=24, columns=80), term=os.environ.get("TERM"))
    for row in rows:
        print_formatted_text(output, FormattedText([*row, ("", "\n")]), STYLE)
    output.reset_attributes()
    output.flush()
    return buffer.getvalue()
