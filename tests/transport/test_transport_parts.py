"""Transport pieces without sockets: line framing, and which module may import which."""

from __future__ import annotations

import ast
import zlib
from pathlib import Path

from chatsupport.core import events as ev
from chatsupport.transport.codec import JsonCodec
from chatsupport.transport.lines import Refusal, split_lines

TRANSPORT = Path(__file__).resolve().parents[2] / "src" / "chatsupport" / "transport"


def test_lines_are_split_on_newline_only_and_kept_whole_across_reads() -> None:
    buffer = bytearray("hello\r\nsnow\u2603".encode()[:-1])  # the snowman cut in two
    assert list(split_lines(buffer, 100)) == ["hello"]
    buffer += "\u2603".encode()[-1:] + b"\n\n"
    assert list(split_lines(buffer, 100)) == ["snow\u2603", ""]
    assert buffer == b""


def test_refused_lines_say_why_and_never_pass_for_text() -> None:
    buffer = bytearray(b"x" * 11 + b"\n\xff\xfe\nnot_utf8\ntoo_long\nrest")
    assert list(split_lines(buffer, 10)) == [
        Refusal.TOO_LONG,
        Refusal.NOT_UTF8,
        "not_utf8",
        "too_long",
    ]
    assert buffer == b"rest"  # a partial line waits for its end


def _imports(name: str) -> set[str]:
    tree = ast.parse((TRANSPORT / f"{name}.py").read_text())
    return {
        node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1
    }


def test_http_and_ws_do_not_import_each_other() -> None:
    assert "ws" not in _imports("http")
    assert {"http", "driver"} <= _imports("ws")  # the response helpers, one way only
    assert "web_server" not in _imports("ws") | _imports("http")
    assert {"http", "ws"} <= _imports("web_server")  # composed there


def _message(text: str) -> ev.Message:
    return ev.Message(
        id=7, room="lobby", uid="u72d1242aee1e", name="Kind Heron", role=None, kind="say",
        text=text, ts=1735689600.123,
    )  # fmt: skip


def _payload(frame: bytes) -> bytes:
    """A server frame's payload (server frames are unmasked)."""
    size = frame[1] & 0x7F
    return frame[2 + {126: 2, 127: 8}.get(size, 0) :]


def _inflate(frame: bytes) -> bytes:
    return zlib.decompressobj(wbits=-15).decompress(_payload(frame) + b"\x00\x00\xff\xff")


def test_each_event_is_encoded_and_compressed_once_for_every_receiver() -> None:
    codec, event = JsonCodec(), _message("an ordinary message, long enough to compress well")
    plain, deflated = codec.encode(event), codec.encode(event, deflate=True)
    for _ in range(3):  # the same objects again: nothing is encoded or compressed twice
        assert codec.encode(event) is plain and codec.encode(event, True) is deflated
    assert deflated[0] == 0xC1 and plain[0] == 0x81  # RSV1 marks the compressed one
    assert _inflate(deflated) == _payload(plain) and len(deflated) < len(plain)
    # The next event's frame stands alone too (no context kept between messages).
    second = codec.encode(_message("another ordinary message, long enough too"), True)
    assert b"another ordinary message" in _inflate(second)


def test_what_would_not_shrink_goes_plain() -> None:
    codec, pong = JsonCodec(), ev.Pong()
    assert codec.encode(pong, True) is codec.encode(pong)
