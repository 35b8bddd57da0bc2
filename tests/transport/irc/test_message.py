"""IRC message grammar: parsing, serialising, tag escapes, limits, text cutting."""

from __future__ import annotations

import pytest

from chatsupport.transport.ircproto.message import (
    Line,
    ParseError,
    body_length,
    escape_tag,
    parse,
    serialise,
    split_utf8,
    strip_formatting,
    unescape_tag,
)


def test_parse_full_line() -> None:
    line = parse(
        "@time=2024-01-01T00:00:00.000Z;+draft/reply=ab\\sc :nick!u@h PRIVMSG #a :hi there"
    )
    assert line.command == "PRIVMSG"
    assert line.params == ["#a", "hi there"]
    assert line.source == "nick!u@h"
    assert line.tags == {"time": "2024-01-01T00:00:00.000Z", "+draft/reply": "ab c"}


def test_parse_middle_params_extra_spaces_and_case() -> None:
    line = parse("user  guest   0 *  :Real Name")
    assert line.command == "USER"
    assert line.params == ["guest", "0", "*", "Real Name"]


def test_parse_trailing_keeps_colons_and_empty() -> None:
    assert parse("PRIVMSG #a ::-)").params == ["#a", ":-)"]
    assert parse("PRIVMSG #a :").params == ["#a", ""]
    assert parse("PING x").params == ["x"]


def test_numeric_command() -> None:
    assert parse(":srv 001 me :Welcome").command == "001"


@pytest.mark.parametrize("text", ["", ":only.a.source", "@a=b", "!!! x", "12 x", "@a :src"])
def test_no_command_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse(text)


def test_tag_escapes_round_trip() -> None:
    for value in ["a;b c\\d\r\ne", "", "plain", "trailing\\"]:
        assert unescape_tag(escape_tag(value)) == value
    assert unescape_tag("a\\") == "a"  # a lone trailing backslash is dropped
    assert unescape_tag("\\x") == "x"  # an unknown escape is the character


def test_serialise_round_trips() -> None:
    line = Line("PRIVMSG", ["#a", "hello world"], "n!u@h", {"time": "t", "msgid": "a.1"})
    data = serialise(line)
    assert data == b"@time=t;msgid=a.1 :n!u@h PRIVMSG #a :hello world\r\n"
    assert parse(data.decode().removesuffix("\r\n")) == line


def test_serialise_cannot_start_a_new_line() -> None:
    data = serialise(Line("PRIVMSG", ["#a", "one\r\nQUIT :x\0"]))
    assert data.count(b"\r\n") == 1
    assert b"\0" not in data
    assert parse(data.decode().rstrip("\r\n")).params == ["#a", "one QUIT :x"]


def test_serialise_trailing_only_when_needed() -> None:
    assert serialise(Line("PONG", ["srv", "tok"])) == b"PONG srv tok\r\n"
    assert serialise(Line("PONG", ["srv", ":tok"])) == b"PONG srv ::tok\r\n"
    assert serialise(Line("PONG", ["srv", ""])) == b"PONG srv :\r\n"


def test_body_length() -> None:
    assert body_length(b"@a=b PRIVMSG #a :x") == (5, 13)
    assert body_length(b"PING x") == (0, 6)
    assert body_length(b"@only-tags") == (10, 0)


def test_strip_formatting() -> None:
    assert strip_formatting("\x02bold\x02 \x0304,12red\x03 \x1ditalic\x0f") == "bold red italic"
    assert strip_formatting("\x0399 no comma") == " no comma"
    assert strip_formatting("plain 12") == "plain 12"


def test_split_utf8_at_spaces_and_never_inside_a_character() -> None:
    text = "word " * 50
    pieces = split_utf8(text.strip(), 40)
    assert all(len(p.encode()) <= 40 for p in pieces)
    assert " ".join(pieces) == text.strip()
    emoji = "é" * 100  # two bytes each, no spaces
    pieces = split_utf8(emoji, 25)
    assert all(len(p.encode()) <= 25 for p in pieces)
    assert "".join(pieces) == emoji
    assert split_utf8("", 10) == [""]
