"""Property test of the WebSocket frame decoder (no socket): anything that is not complete,
valid JSON is `bad_json`; valid JSON of the wrong shape is `bad_request` or `unknown_type`;
a well-formed request is decoded (CONTRACT §6, docs/protocol.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.transport.ws import decode_request

from .test_fuzz_ws import json_values, typed_frames


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strings(value: Any) -> Iterator[str]:
    """Every string in a decoded value, keys too, without recursion (values nest deeply)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())


def is_json(payload: bytes) -> bool:
    """The reference: RFC 8259 JSON text in UTF-8, judged by the standard library, strictly
    (no NaN or Infinity, no lone surrogates, which no UTF-8 text can carry)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    limit, digits = sys.getrecursionlimit(), sys.get_int_max_str_digits()
    sys.setrecursionlimit(max(limit, 4 * len(payload) + 1000))  # nesting is bounded by size
    sys.set_int_max_str_digits(0)
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return False
    finally:
        sys.setrecursionlimit(limit)
        sys.set_int_max_str_digits(digits)
    try:
        for string in _strings(value):
            string.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


documents = st.one_of(json_values, typed_frames).flatmap(
    lambda value: st.sampled_from(
        [json.dumps(value), json.dumps(value, indent=1), json.dumps(value, ensure_ascii=False)]
    )
)
# Nested past what a recursive decoder follows: `[[[ ... ]]]`, `{"a": {"a": ...}}`.
deep = st.tuples(
    st.integers(min_value=1, max_value=3000),
    st.sampled_from([("[", "]"), ('{"a":', "}"), ('[{"k": [', "]}]")]),
    documents,
).map(lambda t: t[1][0] * t[0] + t[2] + t[1][1] * t[0])
valid = st.one_of(documents, deep).map(lambda text: text.encode())
# Damage: cut short, one byte replaced, inserted or removed, or something after the end.
JUNK = b'[]{},:"\\ 0e.-+ntfu\x00\x01\x7f\xc3\xa9\xff'


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    payload = draw(valid)
    at = draw(st.integers(min_value=0, max_value=len(payload)))
    byte = bytes([draw(st.sampled_from(JUNK))])
    how = draw(st.sampled_from(["cut", "replace", "insert", "delete", "append"]))
    if how == "cut":
        return payload[:at]
    if how == "append":
        return payload + byte
    if how == "insert":
        return payload[:at] + byte + payload[at:]
    return payload[:at] + (byte if how == "replace" else b"") + payload[at + 1 :]


payloads = st.one_of(valid, damaged(), st.binary(max_size=64))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads)
@example(b"[1, 2")
@example(b'{"type": "say", "text": 1')
@example(b'{"type": "ping", "skipped": "\xff"}')
@example(b"[" * 5000)
@example(b"[" * 5000 + b"]" * 5000)
@example(b'{"type": "say", "text": "hi", "deep": ' + b"[" * 5000 + b"]" * 5000 + b"}")
@example(b'["\\ud800"]')
@example(b"1e400")
@example(b'{"type": "ping"} ')
@example(b'{"type": "ping"}{}')
def test_bad_json_exactly_when_the_frame_is_not_json(payload: bytes) -> None:
    answer = decode_request(payload)
    if not is_json(payload):
        assert isinstance(answer, ev.Error) and answer.code == "bad_json", (payload, answer)
        assert answer.message in ("that frame is not valid JSON", "that frame is not valid UTF-8")
    elif isinstance(answer, ev.Error):
        assert answer.code in ("bad_request", "unknown_type"), (payload, answer)
        assert answer.message


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (b"[1, 2", "bad_json", "that frame is not valid JSON"),
        (b"[1, 2]", "bad_request", "a frame must be a JSON object"),
        (b'{"type": "say", "text": 1', "bad_json", "that frame is not valid JSON"),
        (b'{"type": "say", "text": 1}', "bad_request", "bad say: Expected `str`, got `int`"),
        (b"[" * 5000, "bad_json", "that frame is not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "bad_request", "bad frame: Expected `object`, got `array`"),
        (b'{"type": "ping", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "bad_request", "bad frame"),
        (b'{"type": "ping", "x": "\xff"}', "bad_json", "that frame is not valid UTF-8"),
        (b'{"type": "dance"}', "unknown_type", "unknown type 'dance'"),
        # Deep, with a string that never ends: judged in one pass, not one per `\"`.
        (b"[" * 1500 + b'"' + b'\\"' * 30000, "bad_json", "that frame is not valid JSON"),
    ],
)
def test_the_answer_names_what_is_wrong(payload: bytes, code: str, message: str) -> None:
    answer = decode_request(payload)
    assert isinstance(answer, ev.Error)
    assert answer.code == code and answer.message.startswith(message), answer


@pytest.mark.parametrize(
    "payload",
    [
        b'{"type":"say","text":"hi","ref":"r1"}',
        b' \r\n\t{ "type" : "say" , "text" : "h\\u00e9" , "ref" : "r1" } \n',
        json.dumps({"type": "say", "text": "été ☕", "ref": "r1"}, ensure_ascii=False).encode(),
    ],
)
def test_a_well_formed_request_is_decoded(payload: bytes) -> None:
    answer = decode_request(payload)
    assert isinstance(answer, rq.Say) and answer.ref == "r1", answer
