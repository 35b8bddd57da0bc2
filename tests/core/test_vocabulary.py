"""The wire's words (core/vocabulary.py) are the ones docs/protocol.md documents, and they go
out as the same strings."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from chatsupport.client.terminal import unknown_words
from chatsupport.core import events as ev
from chatsupport.core.vocabulary import ERROR_CODES, NOTICE_KINDS, REPLAY_CUTS, ROLES

PROTOCOL = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text("utf-8")


def _first_column(heading: str) -> set[str]:
    """The backquoted words in the first column of the table whose header starts with
    `heading`."""
    lines = PROTOCOL.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {heading}"))
    words: set[str] = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        words.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return words


def test_the_documented_error_codes_are_the_vocabulary() -> None:
    assert _first_column("Code") == set(ERROR_CODES)


def test_the_documented_notice_kinds_are_the_vocabulary() -> None:
    assert _first_column("Notice `kind`") == set(NOTICE_KINDS)


def test_the_documented_replay_cuts_are_the_vocabulary() -> None:
    assert _first_column("`resumed` `reason`") == set(REPLAY_CUTS)


def test_the_documented_roles_are_the_vocabulary() -> None:
    documented = re.search(r"`role` is\s+`null`, `\"(\w+)\"` or `\"(\w+)\"`", PROTOCOL)
    assert documented is not None and set(documented.groups()) == set(ROLES)


def test_the_words_go_out_as_plain_strings() -> None:
    notice = msgspec.json.encode(ev.Notice(kind="unignore", text="ok"))
    assert notice == b'{"type":"notice","kind":"unignore","text":"ok"}'
    error = msgspec.json.encode(ev.Error(code="not_in_room", message="no"))
    assert error == b'{"type":"error","code":"not_in_room","message":"no"}'


def test_a_word_outside_the_vocabulary_is_not_decoded() -> None:
    with pytest.raises(msgspec.ValidationError, match="kind"):
        msgspec.json.decode(b'{"type":"notice","kind":"Ignore","text":"x"}', type=ev.EventUnion)


def test_the_terminal_client_shows_the_words_of_a_kind_it_does_not_know() -> None:
    """A newer server may send a notice kind or error code this client's vocabulary lacks:
    its text is still shown (a frame of an unknown type stays unshown, as before)."""
    raw = b'{"type":"notice","kind":"brand_new","text":"a new\\nnotice"}'
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw, type=ev.EventUnion)
    assert unknown_words(raw) == "-- a new\n-- notice\n"
    error = b'{"type":"error","code":"brand_new","message":"a new error"}'
    assert unknown_words(error) == "!! a new error\n"
    assert unknown_words(b'{"type":"brand_new","text":"not shown"}') is None
