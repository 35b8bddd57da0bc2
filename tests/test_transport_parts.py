"""Transport pieces without sockets: line framing, and which module may import which."""

from __future__ import annotations

import ast
from pathlib import Path

from chatsupport.transport.lines import Refusal, split_lines

TRANSPORT = Path(__file__).resolve().parent.parent / "src" / "chatsupport" / "transport"


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
