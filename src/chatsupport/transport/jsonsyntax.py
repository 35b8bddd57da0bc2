"""Is a frame complete, valid JSON? The line between `bad_json` and `bad_request`.

msgspec checks syntax in C, but it recurses, so a frame nested deeper than Python's recursion
limit (`[[[[...`, a few KB) raises RecursionError whether or not it is complete. For those
frames alone the structure is walked here without recursion, and every scalar in it is still
judged by msgspec, so both paths accept exactly the same JSON.
"""

from __future__ import annotations

import re

import msgspec

NOT_UTF8 = "that frame is not valid UTF-8"
NOT_JSON = "that frame is not valid JSON"

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
# Strings and what lies between them, from the start: it stops short at a string that never
# ends. Checked first, so that _STRING never starts a search inside a string: from every
# `\"` of an unended one it would scan to the end again (quadratic: 30 s for 60 KB).
_UNTIL_UNENDED = re.compile(rb'(?:"(?:[^"\\]|\\.)*"|[^"])*')
_BARE = re.compile(rb'[^ \t\n\r\[\]{},:"\x00]+')  # numbers, true, false, null - or junk
_SPACE = b" \t\n\r"
# The skeleton's alphabet: NUL a string (a raw NUL is never valid JSON, so none is left from
# the frame), `0` any other scalar, and the six marks. A `"` left over opened no string.
_STR, _SCALAR, _COMMA, _COLON = 0, ord("0"), ord(","), ord(":")
_OPEN = {ord("["): ord("]"), ord("{"): ord("}")}


def is_utf8(payload: bytes) -> bool:
    """JSON is UTF-8 text (msgspec reads only the strings it keeps, and skips the others)."""
    try:
        return payload.isascii() or bool(payload.decode("utf-8"))
    except UnicodeDecodeError:
        return False


def json_problem(payload: bytes) -> str | None:
    """None for complete, valid JSON (any value, any depth); otherwise what is wrong with it."""
    if not is_utf8(payload):
        return NOT_UTF8
    try:
        msgspec.json.decode(payload, type=msgspec.Raw)
    except msgspec.DecodeError:
        return NOT_JSON
    except RecursionError:
        return None if _deep_json_is_valid(payload) else NOT_JSON
    return None


def _deep_json_is_valid(payload: bytes) -> bool:
    """JSON's grammar with an explicit stack, over a skeleton where each scalar is one byte."""
    ended = _UNTIL_UNENDED.match(payload)
    if 0 in payload or ended is None or ended.end() != len(payload):
        return False
    scalars = _STRING.findall(payload)
    skeleton = _STRING.sub(b"\x00", payload)
    scalars += _BARE.findall(skeleton)
    skeleton = _BARE.sub(b"0", skeleton).translate(None, _SPACE)
    try:  # every string, number and literal, judged by msgspec in one call
        msgspec.json.decode(b"[" + b",".join(scalars) + b"]", type=msgspec.Raw)
    except msgspec.DecodeError:
        return False
    return _well_formed(skeleton)


def _well_formed(skeleton: bytes) -> bool:
    stack = bytearray()  # the closers of the open brackets
    # What may come next: value; item (a value or `]`); key; first_key (a key or `}`); colon;
    # more (`,` or the closer; or the end, at the top).
    want = "value"
    for mark in skeleton:
        if want in ("value", "item") and mark in (_STR, _SCALAR):
            want = "more"
        elif want in ("value", "item") and mark in _OPEN:
            stack.append(_OPEN[mark])
            want = "item" if mark == ord("[") else "first_key"
        elif want in ("key", "first_key") and mark == _STR:
            want = "colon"
        elif want == "colon" and mark == _COLON:
            want = "value"
        elif want == "more" and mark == _COMMA and stack:
            want = "value" if stack[-1] == ord("]") else "key"
        elif want in ("more", "item", "first_key") and stack and mark == stack[-1]:
            stack.pop()
            want = "more"
        else:
            return False
    return want == "more" and not stack
