"""Words stay where they were typed (issue 17, item 1), in the terminal client and the page.

A line typed while the connection is down belongs to the room it was typed in. If that room
is gone after the reconnect (the server restarted, the private chat ended while away), the
line is sent nowhere: the person is told and gets the words back. Real servers on
127.0.0.1, the real client in a pty, the real page in Chromium.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from chatsupport import ChatServer
from chatsupport.transport.ws import HttpConnection

from .helpers import WsClient, start_server
from .mod_helpers import LISTENER_TOKEN, write_tokens
from .test_client import Terminal, url

PRIVATE = "words for the listener only"


async def listener(server: ChatServer) -> WsClient:
    lis = await WsClient.open(server.http_port)
    await lis.request({"type": "auth", "token": LISTENER_TOKEN}, "notice")
    await lis.request({"type": "listen", "on": True}, "notice")
    return lis


async def terminal_in_private_chat(server: ChatServer) -> tuple[Terminal, WsClient, str]:
    """The terminal client asked for a listener and is talking with one, privately."""
    lis = await listener(server)
    term = await Terminal.start(url(server))
    term.type("/talk")
    room = str((await lis.expect("matched"))["room"])
    await term.expect("-- you are now talking privately with")
    term.type("hello listener")
    said = await lis.expect("message", text="hello listener")
    assert said["room"] == room
    return term, lis, room


def clear_line(term: Terminal) -> None:
    os.write(term.master, b"\x15")  # Ctrl-U: the person discards what is on the input line


async def lobby_hears_only(term: Terminal, bystander: WsClient, text: str) -> dict[str, object]:
    """The person says `text` in #lobby; the bystander there gets it and nothing before it."""
    term.type(text)
    said = await bystander.expect("message", text=text)
    assert [f for f in bystander.backlog if f["type"] == "message"] == []
    return said


def cut(server: ChatServer, name: str) -> None:
    """The network drops the terminal client's connection (the session stays resumable)."""
    assert server.chat is not None
    session = next(s for s in server.chat.sessions.values() if s.name == name)
    assert session.link is not None
    cast(HttpConnection, session.link.sink).transport.abort()  # type: ignore[union-attr]


async def test_terminal_restart_during_a_private_chat_sends_nothing_to_the_lobby(
    tmp_path: Path,
) -> None:
    tokens = write_tokens(tmp_path)
    server = await start_server(tokens_file=tokens)
    port = server.http_port
    restarted: ChatServer | None = None
    term, _, _ = await terminal_in_private_chat(server)
    try:
        await server.stop()
        await term.expect("*** goodbye (server shutdown)")
        await term.expect("-- reconnecting in")
        term.type(PRIVATE)  # typed inside the private chat, while the server is down
        term.type("/auth not-a-real-token")  # a secret: never repeated, never kept
        restarted = await start_server(http_port=port, tokens_file=tokens)
        bystander = await WsClient.open(restarted.http_port)
        await term.expect("-- could not resume; you are now ")
        note = await term.expect(f"!! Not sent: “{PRIVATE}”:")
        assert "no longer in the private chat" in note and "Enter sends it to #lobby" in note
        await term.expect("!! Not run: /auth … (you are no longer in the private chat)")
        await term.expect(f"#lobby> {PRIVATE}")  # the words are back on the input line
        notes = [line for line in term.screen.splitlines() if "!!" in line]
        assert "not-a-real-token" not in str(notes)
        clear_line(term)
        said = await lobby_hears_only(term, bystander, "hello lobby")
        assert said["id"] == 1  # the first message #lobby ever had on this server
        assert PRIVATE not in str(bystander.backlog)
    finally:
        await term.close()
        if restarted is not None:
            await restarted.stop()


async def test_terminal_resume_keeps_lines_in_their_private_chat(staff_server: ChatServer) -> None:
    server = staff_server
    term, lis, room = await terminal_in_private_chat(server)
    bystander = await WsClient.open(server.http_port)
    try:
        cut(server, term.name)
        await term.expect("-- reconnecting in")
        term.type("first while away")
        term.type("second while away")
        await term.expect("-- resumed (")
        first = await lis.expect("message", text="first while away")
        second = await lis.expect("message", text="second while away")
        assert first["room"] == second["room"] == room and first["id"] < second["id"]
        term.type("/leave")
        await lis.expect("ended", room=room)
        await term.expect("#lobby> ")
        await lobby_hears_only(term, bystander, "back in the lobby")
        assert "Not sent" not in term.screen
    finally:
        await term.close()


async def test_terminal_private_chat_ended_while_away_keeps_the_line(
    staff_server: ChatServer,
) -> None:
    server = staff_server
    term, lis, room = await terminal_in_private_chat(server)
    bystander = await WsClient.open(server.http_port)
    try:
        cut(server, term.name)
        await term.expect("-- reconnecting in")
        term.type(PRIVATE)  # before the client can come back (its first retry is >= 0.4 s)
        await lis.request({"type": "leave", "room": room}, "left")
        await term.expect(f"-- the private chat #{room} ended")
        await term.expect(": you are no longer in the private chat. Kept for you")
        await term.expect(f"#lobby> {PRIVATE}")
        clear_line(term)
        await lobby_hears_only(term, bystander, "hello lobby")
        assert PRIVATE not in str(bystander.backlog)
    finally:
        await term.close()
