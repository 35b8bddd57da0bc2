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

import pytest
from playwright.async_api import Browser, Page, WebSocket, expect

from chatsupport import ChatServer
from chatsupport.transport.ws import HttpConnection

from .client.test_client import Terminal, url
from .helpers import WsClient, eventually, start_server
from .mod_helpers import LISTENER_TOKEN, write_tokens
from .web.test_web import browser, link_of, no_page_errors, open_page, page_session, say

__all__ = ["browser"]  # the fixture, shared with the other browser tests

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
        await term.expect(f"-- you left #{room}")  # so what is typed next is for #lobby
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


# ---- the web page ------------------------------------------------------------------------------
def record_sent(page: Page) -> list[str]:
    """Every WebSocket frame the page sends, from now on (whatever socket it opens)."""
    sent: list[str] = []

    def watch(socket: WebSocket) -> None:
        socket.on("framesent", lambda payload: sent.append(str(payload)))

    page.on("websocket", watch)
    return sent


async def page_in_private_chat(browser: Browser, server: ChatServer) -> tuple[Page, WsClient, str]:
    lis = await listener(server)
    page = await open_page(browser, server)
    await page.locator("#talk-btn").click()
    room = str((await lis.expect("matched"))["room"])
    private = page.get_by_role("tab", name=f"Private: {lis.name}")
    await expect(private).to_have_attribute("aria-selected", "true")
    await say(page, "hello listener")
    assert (await lis.expect("message", text="hello listener"))["room"] == room
    return page, lis, room


async def type_offline(page: Page, text: str) -> None:
    """Typed and sent while the connection is down: it waits in the log as Sending…"""
    await expect(page.locator("html")).not_to_have_attribute("data-conn", "online")
    await say(page, text)
    await expect(page.locator(".pending", has_text=text)).to_have_count(1)


@pytest.mark.browser
async def test_page_restart_during_a_private_chat_sends_nothing_to_the_lobby(
    browser: Browser, tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path)
    server = await start_server(tokens_file=tokens)
    port = server.http_port
    restarted: ChatServer | None = None
    try:
        page, _, room = await page_in_private_chat(browser, server)
        sent = record_sent(page)
        await server.stop()
        await type_offline(page, PRIVATE)
        restarted = await start_server(http_port=port, tokens_file=tokens)
        bystander = await WsClient.open(restarted.http_port)
        await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
        box, error = page.locator("#composer-input"), page.locator("#composer-error")
        await expect(box).to_have_value(PRIVATE)  # the words are back in the box
        await expect(error).to_contain_text("Not sent: the private conversation ended")
        await expect(error).to_contain_text("#lobby")  # where the box would send them now
        await expect(page.locator(".pending")).to_have_count(0)
        assert not [frame for frame in sent if PRIVATE in frame]  # sent nowhere
        await say(page, "hello lobby")  # the person's choice: other words, for #lobby
        said = await bystander.expect("message", text="hello lobby")
        assert said["id"] == 1  # the first message #lobby ever had on this server
        assert PRIVATE not in str(bystander.backlog)
        assert not [frame for frame in sent if PRIVATE in frame]
        assert room not in str([frame for frame in sent if '"say"' in frame])
        no_page_errors(page)
    finally:
        if restarted is not None:
            await restarted.stop()
        else:
            await server.stop()


@pytest.mark.browser
async def test_page_private_chat_ended_while_away_keeps_the_words(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    page, lis, room = await page_in_private_chat(browser, server)
    sent = record_sent(page)
    await page.context.set_offline(True)  # no reconnect can happen meanwhile
    session = page_session(server, lis.uid)
    cast(HttpConnection, link_of(session).sink).transport.abort()  # type: ignore[union-attr]
    assert await eventually(lambda: session.link is None)
    await type_offline(page, PRIVATE)
    await type_offline(page, "and one more thing")
    await lis.request({"type": "leave", "room": room}, "left")
    await page.context.set_offline(False)
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    box = page.locator("#composer-input")
    await expect(box).to_have_value(f"{PRIVATE}\nand one more thing")  # both kept, in order
    await expect(page.locator("#composer-error")).to_contain_text("Not sent")
    await expect(page.locator(".pending")).to_have_count(0)
    await lis.request({"type": "ping"}, "pong")
    assert PRIVATE not in str(lis.backlog)
    assert not [frame for frame in sent if PRIVATE in frame]
    no_page_errors(page)


@pytest.mark.browser
async def test_page_resume_keeps_words_in_their_private_chat(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    page, lis, room = await page_in_private_chat(browser, server)
    bystander = await WsClient.open(server.http_port)
    await page.context.set_offline(True)
    session = page_session(server, lis.uid, bystander.uid)
    cast(HttpConnection, link_of(session).sink).transport.abort()  # type: ignore[union-attr]
    assert await eventually(lambda: session.link is None)
    await type_offline(page, "first while away")
    await page.get_by_role("tab", name="#lobby").click()  # another tab is shown meanwhile
    await page.context.set_offline(False)
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    said = await lis.expect("message", text="first while away")
    assert said["room"] == room
    await expect(page.locator(".pending")).to_have_count(0)
    await bystander.request({"type": "ping"}, "pong")
    assert "while away" not in str(bystander.backlog)
    no_page_errors(page)
