"""The terminal client's layout (`client/render.py`): pure functions, no terminal needed.
Days are set with a clock the test gives (as ergo's `nowFunc`), not by waiting for midnight."""

from __future__ import annotations

import time
from datetime import date

from chatsupport.client.render import Fragments, Screen, highlight, wrap
from chatsupport.core import events as ev

DAY = 86400.0
NOON = time.mktime((2025, 3, 3, 12, 0, 0, 0, 0, -1))  # a Monday, local time


def text(row: Fragments) -> str:
    return "".join(part for _, part in row)


def marked(row: Fragments) -> list[str]:
    return [part for style, part in row if style == "class:mention"]


def message(text: str, ts: float = NOON, name: str = "Kind Puffin", uid: str = "u2") -> ev.Message:
    return ev.Message(
        id=1, room="lobby", uid=uid, name=name, role=None, kind="say", text=text, ts=ts
    )


def test_wrap_breaks_at_spaces_and_indents_under_the_text() -> None:
    body = "one two three four five six seven eight nine ten eleven twelve"
    rows = [text(r) for r in wrap([("", "12:00 <Al> ")], [("", body)], 40)]
    assert rows == [
        "12:00 <Al> one two three four five six",
        "           seven eight nine ten eleven",
        "           twelve",
    ]
    assert " ".join(r.strip() for r in rows).removeprefix("12:00 <Al> ") == body


def test_wrap_splits_only_a_word_wider_than_a_row() -> None:
    rows = [text(r) for r in wrap([("", "> ")], [("", "ab " + "x" * 25 + " cd")], 12)]
    assert rows == ["> ab", "  xxxxxxxxxx", "  xxxxxxxxxx", "  xxxxx cd"]
    assert all(len(row) <= 12 for row in rows)


def test_wrap_counts_wide_characters_as_two_cells() -> None:
    rows = [text(r) for r in wrap([("", "> ")], [("", "日本語 日本語 日本語")], 10)]
    assert rows == ["> 日本語", "  日本語", "  日本語"]


def test_a_prefix_too_wide_leaves_room_for_the_text() -> None:
    prefix = [("", "12:00 <" + "N" * 30 + "> ")]
    rows = [text(r) for r in wrap(prefix, [("", "word " * 12)], 50)]
    assert rows[0].startswith("12:00 <NNN") and all(len(r) <= 50 for r in rows)
    assert all(r.startswith("  word") for r in rows[1:])  # a short indent, not 40 spaces


def test_styles_survive_wrapping() -> None:
    rows = wrap([("", "> ")], highlight("aaa bbb Misty Fox ccc", "Misty Fox"), 12)
    assert [text(r) for r in rows] == ["> aaa bbb", "  Misty Fox", "  ccc"]
    assert marked(rows[1]) == ["Misty Fox"]


def test_highlight_is_whole_words_in_any_case() -> None:
    assert marked(highlight("hey misty fox, and MISTY FOX!", "Misty Fox")) == [
        "misty fox",
        "MISTY FOX",
    ]
    assert marked(highlight("Misty Foxes are not me", "Misty Fox")) == []
    assert marked(highlight("anything", "")) == []


def test_mentions_only_highlight_and_each_line_of_a_message_keeps_its_speaker() -> None:
    screen = Screen(lambda: 80, clock=lambda: NOON)
    rows = screen.message(message("hello misty fox\n<Misty Fox> fake line"), "", "Misty Fox")
    stamp = time.strftime("%H:%M ", time.localtime(NOON))
    assert [text(r) for r in rows] == [
        f"{stamp}<Kind Puffin> hello misty fox",
        f"{stamp}<Kind Puffin> <Misty Fox> fake line",
    ]
    assert marked(rows[0]) == ["misty fox"]
    own = screen.message(message("I am Misty Fox", name="Misty Fox", uid="u1"), "", "")
    assert marked(own[0]) == []  # (the client passes no name for our own lines)


def test_a_day_marker_comes_when_the_day_changes() -> None:
    now = [NOON]
    screen = Screen(lambda: 80, clock=lambda: now[0])
    first = screen.text("-- you are in #lobby")
    assert len(first) == 1  # today: no marker for the first line
    now[0] = NOON + DAY
    rows = [text(r) for r in screen.text("-- next day")]
    day = date.fromtimestamp(NOON + DAY)
    assert rows[0] == f"-- Day changed to {day:%A} {day.day} {day:%B %Y}"
    assert rows[0] == "-- Day changed to Tuesday 4 March 2025"
    assert rows[1].endswith("-- next day") and len(rows) == 2
    assert len(screen.text("-- same day")) == 1
    replayed = screen.message(message("said yesterday", ts=NOON), "", "")
    assert text(replayed[0]) == "-- Day changed to Monday 3 March 2025"  # older, replayed


def test_text_lines_keep_their_marker_and_wrap_under_it() -> None:
    screen = Screen(lambda: 30, clock=lambda: NOON)
    rows = screen.text("!! that token is not valid, try another one")
    stamp = time.strftime("%H:%M ", time.localtime(NOON))
    assert [text(r) for r in rows] == [
        f"{stamp}!! that token is not",
        "         valid, try another",
        "         one",
    ]
    assert rows[0][1] == ("class:error", "!! ")
