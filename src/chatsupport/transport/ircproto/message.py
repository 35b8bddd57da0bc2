"""IRC messages: parse one line into a `Line`, serialise a `Line` back to bytes.

The grammar is the one modern clients speak (RFC 1459/2812 with IRCv3 message tags):

    [@tag=value;tag2 ][:source ]COMMAND [param ...] [:trailing]

Limits, as the IRCv3 message-tags specification sets them: the tag section a client sends
is at most 4096 bytes (with its `@` and the space after it), the rest of the line at most
512 bytes with its CR LF. A line past either is refused (`ERR_INPUTTOOLONG`), not cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_TAGS = 4096  # the client's tag section, `@` and trailing space included
MAX_BODY = 510  # the rest, without CR LF
MAX_LINE = MAX_TAGS + MAX_BODY  # what the reader accepts before it refuses a line
MAX_SERVER_TAGS = 8191  # what a server may send (tags it adds plus the client's)

_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_UNSAFE = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})
_COMMAND = re.compile(r"^(?:[A-Za-z]+|[0-9]{3})$")
# mIRC formatting: bold, colour (with up to two numbers), hex colour, reset, reverse,
# italic, strikethrough, monospace, underline. Removed before text reaches the core, so a
# colour code leaves no digits behind (the core would drop the control byte, not the digits).
_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
    r"|[\x02\x0f\x16\x1d\x1e\x11\x1f]"
)


class ParseError(ValueError):
    """A line that is not an IRC message (e.g. no command)."""


@dataclass(slots=True)
class Line:
    """One IRC message. `params` holds every parameter; the last may contain spaces."""

    command: str
    params: list[str] = field(default_factory=list)
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def param(self, index: int, default: str = "") -> str:
        return self.params[index] if index < len(self.params) else default


def unescape_tag(value: str) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")  # a lone trailing backslash is dropped
            out.append(_TAG_ESCAPES.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def escape_tag(value: str) -> str:
    return value.translate(_TAG_UNSAFE)


def _parse_tags(section: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in section.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        tags[key] = unescape_tag(value)
    return tags


def parse(text: str) -> Line:
    """Parse one line (without its CR LF). Raises ParseError when there is no command."""
    rest = text.lstrip(" ")
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        section, _, rest = rest[1:].partition(" ")
        tags = _parse_tags(section)
        rest = rest.lstrip(" ")
    source = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    head, _, rest = rest.partition(" ")
    if not _COMMAND.match(head):
        raise ParseError("no command")
    params: list[str] = []
    while rest:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        param, _, rest = rest.partition(" ")
        params.append(param)
    return Line(head.upper(), params, source, tags)


def body_length(raw: bytes) -> tuple[int, int]:
    """(bytes of the tag section with its `@` and space, bytes of the rest) of a raw line."""
    if raw.startswith(b"@"):
        end = raw.find(b" ")
        if end < 0:
            return len(raw), 0
        return end + 1, len(raw) - end - 1
    return 0, len(raw)


def serialise(line: Line) -> bytes:
    """The line's bytes with CR LF. Parameters never carry CR, LF or NUL (they are dropped:
    nothing in a parameter can start another line); only the last may hold spaces."""
    parts: list[str] = []
    if line.tags:
        parts.append(
            "@" + ";".join(k if v == "" else f"{k}={escape_tag(v)}" for k, v in line.tags.items())
        )
    if line.source:
        parts.append(":" + line.source)
    parts.append(line.command)
    params = [_safe(p) for p in line.params]
    if params:
        for middle in params[:-1]:
            parts.append(middle.replace(" ", "") or "*")
        last = params[-1]
        parts.append(":" + last if (not last or " " in last or last.startswith(":")) else last)
    return (" ".join(parts) + "\r\n").encode()


def _safe(param: str) -> str:
    if "\r" in param or "\n" in param or "\0" in param:
        return param.replace("\r", "").replace("\n", " ").replace("\0", "")
    return param


def strip_formatting(text: str) -> str:
    """Text without mIRC bold/colour/italic codes (colour numbers included)."""
    return _FORMATTING.sub("", text) if any(c < " " for c in text) else text


def split_utf8(text: str, limit: int) -> list[str]:
    """`text` cut into pieces of at most `limit` UTF-8 bytes, at a space when one is near
    the end of a piece, never inside a character. An empty text is one empty piece."""
    pieces: list[str] = []
    data = text.encode()
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # a continuation byte: step back
            cut -= 1
        space = data.rfind(b" ", limit // 2, cut + 1)
        if space > 0:
            cut = space
        pieces.append(data[:cut].decode())
        data = data[cut:].removeprefix(b" ") if space > 0 else data[cut:]
    pieces.append(data.decode())
    return pieces
