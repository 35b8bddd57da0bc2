"""Shared by the moderation, flood, crisis and privacy tests: staff tokens, clients from a
chosen loopback address (127.0.0.0/8 is all ours), and sync points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chatsupport.core.roles import hash_line

from .helpers import TextClient, WsClient

MOD_TOKEN = "mod-token-5f1c9a7e2b"
LISTENER_TOKEN = "listener-token-8d3e6b0a4c"


def write_tokens(directory: Path) -> str:
    path = directory / "tokens"
    path.write_text(hash_line("mod", MOD_TOKEN) + "\n" + hash_line("listener", LISTENER_TOKEN))
    return str(path)


async def ws_from(port: int, address: str, welcome: bool = True) -> WsClient:
    """A WebSocket client whose connection comes from `address` (e.g. 127.0.0.5)."""
    return await WsClient.open(port, welcome=welcome, local_addr=address)


async def staff_ws(port: int, token: str = MOD_TOKEN, address: str | None = None) -> WsClient:
    client = await WsClient.open(port, local_addr=address)
    reply = await client.request({"type": "auth", "token": token}, "notice")
    assert reply["kind"] == "auth", reply
    return client


async def staff_tcp(port: int, token: str = MOD_TOKEN) -> TextClient:
    client = await TextClient.open(port)
    await client.send(f"/auth {token}")
    await client.expect(lambda s: s.startswith("-- you are signed in"))
    return client


async def ws_sync(client: WsClient) -> list[dict[str, Any]]:
    """Every frame that arrived before a fresh pong (so before anything sent after now)."""
    await client.request({"type": "ping"}, "pong")
    frames, client.backlog = client.backlog, []
    return frames


async def tcp_sync(client: TextClient) -> list[str]:
    """Every line before the answer to a /rooms sent now."""
    await client.send("/rooms")
    lines: list[str] = []
    for _ in range(10000):
        line = await client.line()
        if line.startswith("-- rooms:"):
            return lines
        lines.append(line)
    raise AssertionError("no /rooms answer")


def texts(frames: list[dict[str, Any]], kind: str = "message") -> list[str]:
    return [f.get("text", "") for f in frames if f.get("type") == kind]


async def expect_kind(client: WsClient, kind: str, frame_type: str = "notice") -> dict[str, Any]:
    """The first `frame_type` frame with this `kind` (WsClient.expect has its own `kind`)."""
    passed: list[dict[str, Any]] = []
    try:
        for _ in range(1000):
            frame = await client.expect(frame_type)
            if frame.get("kind") == kind:
                return frame
            passed.append(frame)
        raise AssertionError(f"no {frame_type} of kind {kind}")
    finally:
        client.backlog = passed + client.backlog
