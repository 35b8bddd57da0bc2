"""Roles: tokens file, `chatsupport token add`, auth on both interfaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatsupport.core.roles import hash_line, parse_tokens

from ..helpers import ROOT, TextClient, WsClient, start_server


def test_token_add_prints_once_and_stores_only_a_hash(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatsupport",
            "token",
            "add",
            "--role",
            "mod",
            "--tokens-file",
            str(tokens),
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src")},
        check=True,
    ).stdout
    token = out.strip().splitlines()[-1]
    stored = tokens.read_text()
    assert token not in stored and stored.startswith("mod sha256$")
    entries = parse_tokens(stored)
    assert [e.role for e in entries] == ["mod"] and entries[0].matches(token)
    assert not entries[0].matches(token + "x")


def test_bad_tokens_file_is_refused() -> None:
    with pytest.raises(ValueError, match="tokens:1"):
        parse_tokens("admin sha256$ab$cd", "tokens")


async def test_auth_grants_roles_on_both_interfaces(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(hash_line("mod", "mod-secret") + "\n" + hash_line("listener", "lis") + "\n")
    server = await start_server(tokens_file=str(tokens))
    try:
        ws = await WsClient.open(server.http_port)
        reply = await ws.request({"type": "auth", "token": "mod-secret"}, "notice")
        assert reply["kind"] == "auth" and reply["name"] == "mod"
        message = await ws.request({"type": "say", "room": "lobby", "text": "hello"}, "message")
        assert message["role"] == "mod"
        wrong = await ws.request({"type": "auth", "token": "guess"}, "error")
        assert wrong["code"] == "forbidden"

        tcp = await TextClient.open(server.tcp_port)
        await tcp.send("/auth lis")
        assert await tcp.expect(lambda s: "signed in" in s) == "-- you are signed in as a listener"
        await tcp.send("i am here to listen")
        got = await ws.expect("message", text="i am here to listen")
        assert got["role"] == "listener"
    finally:
        await server.stop()


async def test_repeated_wrong_tokens_are_slowed(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(hash_line("mod", "right") + "\n")
    server = await start_server(tokens_file=str(tokens))
    try:
        tcp = await TextClient.open(server.tcp_port)
        replies = []
        for attempt in range(7):
            await tcp.send(f"/auth wrong{attempt}")
            replies.append(await tcp.expect(lambda s: s.startswith("!!")))
        assert replies[:5] == ["!! that token is not valid"] * 5
        assert replies[5:] == ["!! too many wrong tokens; try again in 10 minutes"] * 2
        await tcp.send("/auth right")  # even the right one waits out the window
        assert "too many" in await tcp.expect(lambda s: s.startswith("!!"))
        # ... but only for the person who guessed: a neighbour on the same network signs in.
        neighbour = await TextClient.open(server.tcp_port)
        await neighbour.send("/auth right")
        assert await neighbour.expect(lambda s: s.startswith(("!!", "-- you are signed"))) == (
            "-- you are signed in as a moderator"
        )
    finally:
        await server.stop()
