"""Honest presence and the last conversation basics in the page (issue 14, items 3 and 4):
deleting a message (your own; a moderator any), away people shown as away in "Here now"
and the counts, the old name gone after a rename, "… is typing" in a private chat only.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest
from playwright.async_api import Browser, Page, WebSocket, expect

from chatsupport import ChatServer
from chatsupport.transport.ws import HttpConnection

from ..core.test_matching import listener
from ..helpers import TextClient
from ..mod_helpers import LISTENER_TOKEN, MOD_TOKEN, expect_kind, staff_ws
from .test_web import (
    browser,
    link_of,
    my_name,
    no_page_errors,
    open_page,
    run_axe,
    say,
    shown,
    use_control,
    web,
)

__all__ = ["browser", "web"]  # the fixtures, shared with test_web

pytestmark = pytest.mark.browser


async def sign_in(page: Page, token: str) -> None:
    await page.get_by_role("button", name="Settings").click()
    await page.get_by_text("Staff sign-in").click()
    await page.get_by_label("Listener or moderator token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#settings-status")).to_contain_text("you are signed in")
    await page.get_by_role("button", name="Close").click()


def sent_frames(page: Page) -> list[dict[str, Any]]:
    """Every frame the page sends from now on, as it sends it."""
    frames: list[dict[str, Any]] = []

    def watch(socket: WebSocket) -> None:
        socket.on("framesent", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", watch)
    return frames


# ---- delete --------------------------------------------------------------------------------
async def test_delete_your_own_message_and_a_moderator_deletes_any(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    person = await open_page(browser, server, bypass_csp=True)  # for axe
    mod = await open_page(browser, server)
    await sign_in(mod, MOD_TOKEN)
    watcher = await staff_ws(server.http_port)
    nc = await TextClient.open(server.tcp_port)

    # Our own message: its options offer to delete it (and nothing meant for others).
    await say(person, "I said more than I meant to")
    await expect(shown(mod).filter(has_text="I said more than I meant to")).to_have_count(1)
    await person.get_by_role("button", name="Options for your message").click()
    dialog = person.locator("#dlg-message")
    await expect(dialog.get_by_role("heading")).to_have_text("Your message")
    await expect(person.locator("#ignore-btn")).to_be_hidden()
    await expect(person.locator("#report-form")).to_be_hidden()
    assert await run_axe(person) == []
    await person.get_by_role("button", name="Delete my message…").click()
    await expect(person.locator("#confirm-title")).to_have_text("Delete your message?")
    await person.locator("#confirm-ok").click()
    for page in (person, mod):
        gone = page.locator(".msg.deleted")
        await expect(gone).to_have_text("Message deleted")
        await expect(page.get_by_text("I said more than I meant to")).to_have_count(0)

    # Someone else's: not for us to delete; for a moderator, it is.
    await nc.send("cruel words from netcat")
    await expect(shown(person).filter(has_text="cruel words")).to_have_count(1)
    await person.get_by_role("button", name=f"Options for the message from {nc.name}").click()
    await expect(person.locator("#delete-btn")).to_be_hidden()
    await person.locator("#dlg-message [data-close]").click()
    await mod.get_by_role("button", name=f"Options for the message from {nc.name}").click()
    await mod.get_by_role("button", name="Delete this message…").click()
    await expect(mod.locator("#confirm-text")).to_contain_text("without its words")
    await mod.locator("#confirm-ok").click()
    await expect(mod.locator("#dlg-message")).to_be_hidden()
    for page in (person, mod):
        removed = page.locator(".msg.deleted", has_text="Message removed by a moderator")
        await expect(removed).to_have_count(1)
        await expect(page.get_by_text("cruel words from netcat")).to_have_count(0)
    await nc.expect(lambda s: "was deleted by a moderator" in s)
    noted = await expect_kind(watcher, "deleted")
    assert "cruel" not in noted["text"] and nc.name in noted["text"]
    for page in (person, mod):
        no_page_errors(page)


# ---- honest presence -------------------------------------------------------------------------
async def test_away_people_are_shown_away_and_a_new_name_replaces_the_old(
    browser: Browser, web: ChatServer
) -> None:
    watcher = await open_page(browser, web)
    leaving = await open_page(browser, web)
    name = await my_name(leaving)
    people = watcher.locator("#people li")
    count = watcher.locator("#panes .pane:not([hidden]) .pane-count")
    await expect(people).to_have_count(2)
    await expect(count).to_have_text(re.compile(r"^2 here"))

    # The network goes: the page cannot come back, and the others see them away, not here.
    await leaving.context.set_offline(True)
    assert web.chat is not None
    session = next(s for s in web.chat.sessions.values() if s.name == name)
    cast(HttpConnection, link_of(session).sink).transport.abort()  # type: ignore[union-attr]
    await expect(watcher.locator(".sys", has_text=f"{name} is away")).to_have_count(1)
    await expect(count).to_have_text(re.compile(r"^1 here, 1 away"))
    away = people.filter(has_text=name)
    await expect(away).to_have_class(re.compile(r"\baway\b"))
    await expect(away).to_contain_text("(away)")
    await expect(people.last).to_contain_text(name)  # the people here come first

    # Back: here again, counted whole.
    await leaving.context.set_offline(False)
    await expect(watcher.locator(".sys", has_text=f"{name} is back")).to_have_count(1)
    await expect(count).to_have_text(re.compile(r"^2 here"))
    await expect(people.filter(has_text="(away)")).to_have_count(0)

    # A new name: the old one is gone from our own "Here now" and from the others'.
    await leaving.get_by_role("button", name="Settings").click()
    await leaving.locator("#nick-input").fill("Still Pond")
    await leaving.locator("#nick-form button[type=submit]").click()
    await expect(leaving.locator("#settings-status")).to_contain_text("Still Pond")
    await leaving.locator("#dlg-settings [data-close]").first.click()
    for page in (leaving, watcher):
        await expect(page.locator("#people")).to_contain_text("Still Pond")
        await expect(page.locator("#people")).not_to_contain_text(name)
    for page in (watcher, leaving):
        no_page_errors(page)


# ---- typing -----------------------------------------------------------------------------------
async def test_typing_is_shown_in_a_private_chat_and_sent_sparingly(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    lis = await listener(server, LISTENER_TOKEN)
    page = await open_page(browser, server)
    frames = sent_frames(page)
    await page.reload()  # the same person, on a socket we watch
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    box = page.locator("#composer-input")

    # In the group room, typing is nobody's business.
    await box.press_sequentially("just the lobby")
    await box.fill("")
    await use_control(page, "#talk-btn")
    room = (await lis.expect("matched"))["room"]
    await expect(page.get_by_role("tab", name=re.compile("^Private"))).to_have_attribute(
        "aria-selected", "true"
    )

    # Ours: one `typing` for a burst of keys, to the private room only.
    await box.press_sequentially("hello, I")
    typing = await lis.expect("typing")
    assert typing["room"] == room
    sent = [f for f in frames if f.get("type") == "typing"]
    assert [f["room"] for f in sent] == [room]

    # Theirs: "… is typing" in the private chat, until their message comes.
    await lis.send({"type": "typing", "room": room})
    indicator = page.locator("#panes .pane:not([hidden]) .typing")
    await expect(indicator).to_have_text(f"{lis.name} is typing…")
    await expect(indicator).to_be_visible()
    await lis.request({"type": "say", "room": room, "text": "take your time"}, "message")
    await expect(shown(page).filter(has_text="take your time")).to_have_count(1)
    await expect(indicator).to_be_hidden()

    # Their new name replaces the old one on the tab, in the title and in "Here now".
    await lis.request({"type": "nick", "name": "Kind Owl"}, "notice")
    await expect(page.get_by_role("tab", name="Private: Kind Owl")).to_be_visible()
    await expect(page.locator("#panes .pane:not([hidden]) .pane-title")).to_have_text(
        "Private: Kind Owl"
    )
    await expect(page.locator("#people")).to_contain_text("Kind Owl")
    await expect(page.locator("#people")).not_to_contain_text(lis.name)
    await expect(page.locator("#composer-label")).to_have_text("Message Private: Kind Owl")
    no_page_errors(page)
