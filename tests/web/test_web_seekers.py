"""Help that reaches a person at once, in a real Chromium: the crisis card in the person's
region, the honest waiting room, drafts that stay in their room, ending with a
confirmation (and "did this help?"), a listener's banner and title, and handoff naming."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from chatsupport import ChatServer

from ..core.test_matching import nothing_more
from ..helpers import WsClient, eventually, start_server
from ..mod_helpers import LISTENER_TOKEN, expect_kind
from ..redis_server import RedisServer
from .test_web import MOBILE, browser, my_name, no_page_errors, open_page, say, use_control

__all__ = ["browser"]  # the fixture, shared with test_web.py

CRISIS = "some days I want to end my life"


async def sign_in(page: Page, token: str = LISTENER_TOKEN, listen: bool = False) -> None:
    await page.get_by_role("button", name="Settings").click()
    await page.get_by_text("Staff sign-in").click()
    await page.get_by_label("Listener or moderator token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#settings-status")).to_contain_text("you are signed in")
    await page.locator("#dlg-settings [data-close]").click()
    if listen:
        await page.get_by_role("button", name="Staff").click()
        await page.get_by_role("switch", name="Available for one-to-one chats").click()
        await expect(page.locator("#staff-status")).to_contain_text("you are available")
        await page.locator("#dlg-staff [data-close]").click()


async def listener_ws(server: ChatServer, listen: bool = True) -> WsClient:
    ws = await WsClient.open(server.http_port)
    await ws.request({"type": "auth", "token": LISTENER_TOKEN}, "notice")
    if listen:
        await ws.request({"type": "listen", "on": True}, "notice")
    return ws


async def test_the_crisis_card_shows_the_persons_region_first(
    browser: Browser, staff_server: ChatServer
) -> None:
    page = await open_page(browser, staff_server, MOBILE, locale="en-GB", timezone="Europe/London")
    await say(page, CRISIS)
    card = page.locator(".help-card").last
    await expect(card.locator(".resource").first).to_contain_text("Samaritans")
    await expect(card.get_by_role("link", name="Call 116 123 (Samaritans)")).to_have_attribute(
        "href", "tel:116123"
    )
    assert "/" not in await card.locator("p").first.inner_text()  # no terminal commands
    # Every other region is one tap away: the dialog opens on theirs.
    await card.get_by_role("button", name="More help lines").click()
    await expect(page.locator("#region")).to_have_value("GB")
    await expect(page.locator("#resources-status")).to_contain_text("United Kingdom")
    no_page_errors(page)


async def test_the_waiting_room_is_honest_and_the_note_reaches_the_listener(
    browser: Browser, staff_server: ChatServer
) -> None:
    page = await open_page(browser, staff_server, MOBILE)
    await use_control(page, "#talk-btn")
    await expect(page.locator("#queue-text")).to_have_text(
        "You are number 1 in line for a listener."
    )
    await expect(page.locator("#queue-outlook")).to_contain_text("No listener is on right now")
    await expect(page.locator("#queue-lines .resource").first).to_be_visible()  # help first
    await page.get_by_label("While you wait: what's on your mind?").fill("exams, and home")
    await page.get_by_role("button", name="Share with my listener").click()
    await expect(page.locator("#note-status")).to_contain_text("Shared")

    lis = await listener_ws(staff_server)
    heard = await lis.expect("matched")
    assert heard["note"] == "exams, and home"
    await expect(page.get_by_role("tab", name=f"Private: {lis.name}")).to_have_attribute(
        "aria-selected", "true"
    )
    await expect(page.locator("#queue")).to_be_hidden()
    no_page_errors(page)


@pytest.mark.redis
async def test_asking_for_a_listener_while_delivery_is_interrupted_waits_and_asks_again(
    browser: Browser,
) -> None:
    """Redis stalls as a person asks for a listener: the page does not say one-to-one chats
    are not available here (they are); it says why nobody can be reached yet, and puts them
    in line as soon as the server says delivery is back."""
    own = RedisServer().start()
    server = await start_server(broker=own.url())
    try:
        page = await open_page(browser, server, MOBILE)
        own.pause()
        try:
            await use_control(page, "#talk-btn")
            await expect(page.locator("#queue-text")).to_contain_text(
                "Delivery is interrupted for a moment, so no listener can be reached yet."
            )
            await expect(page.locator("#queue-cancel")).to_have_text("Cancel")
        finally:
            own.resume()
        await expect(page.locator("#queue-text")).to_have_text(
            "You are number 1 in line for a listener."
        )
        no_page_errors(page)
    finally:
        await server.stop()
        own.resume()
        own.stop()


async def test_a_half_typed_reply_stays_in_its_room_when_a_match_opens(
    browser: Browser, staff_server: ChatServer
) -> None:
    page = await open_page(browser, staff_server)
    await sign_in(page, listen=True)
    box = page.locator("#composer-input")
    await box.fill("half typed reply for the lobby")
    seeker = await WsClient.open(staff_server.http_port)
    await seeker.request({"type": "talk"}, "queue")
    room = (await seeker.expect("matched"))["room"]
    private = page.get_by_role("tab", name=f"Private: {seeker.name}")
    await expect(private).to_have_attribute("aria-selected", "true")
    await expect(box).to_have_value("")  # the new tab has its own, empty box
    await box.fill("hello, I'm here")
    await box.press("Enter")
    got = await seeker.expect("message", room=room)
    assert got["text"] == "hello, I'm here"
    await nothing_more(seeker, "message", text="half typed reply for the lobby")
    await page.get_by_role("tab", name="#lobby").click()
    await expect(box).to_have_value("half typed reply for the lobby")
    await private.click()
    await expect(box).to_have_value("")
    no_page_errors(page)


async def test_a_listener_who_asks_for_a_listener_is_no_longer_available(
    browser: Browser, staff_server: ChatServer
) -> None:
    page = await open_page(browser, staff_server)
    await sign_in(page, listen=True)
    await use_control(page, "#talk-btn")
    await expect(page.locator("#queue-text")).to_have_text(
        "You are number 1 in line for a listener."
    )
    await expect(page.locator("#listen-switch")).not_to_be_checked()
    await expect(page.locator(".line.sys").last).to_contain_text("not be offered new chats")
    no_page_errors(page)


async def test_a_listener_cannot_miss_an_alert(browser: Browser, staff_server: ChatServer) -> None:
    page = await open_page(browser, staff_server)
    await sign_in(page)
    title = await page.title()
    person = await WsClient.open(staff_server.http_port)
    await person.request({"type": "say", "room": "lobby", "text": CRISIS}, "message")
    banner = page.locator("#alert-banner")
    await expect(banner).to_contain_text(f"{person.name} may need help")
    await expect(page).to_have_title(f"● {person.name} may need help · {title}")
    await banner.get_by_role("button", name="Offer a private chat").click()
    offer = await expect_kind(person, "offer")
    assert offer["name"] == await my_name(page)
    await expect(page.locator("#listen-switch")).to_be_checked()  # offering: available
    await expect(banner).to_contain_text("Offer sent")
    await expect(page).to_have_title(title)

    seeker = await WsClient.open(staff_server.http_port)
    await person.request({"type": "talk"}, "queue")  # they choose to talk: matched at once
    await person.expect("matched")
    await seeker.request({"type": "talk"}, "queue")  # nobody free: listeners hear of it
    await expect(banner).to_contain_text("Someone is waiting for a listener")
    await banner.get_by_role("button", name="Dismiss").click()
    await expect(banner).to_have_count(0)
    await expect(page).to_have_title(title)
    no_page_errors(page)


async def test_handoff_names_the_new_listener_and_ending_asks_once(
    browser: Browser, staff_server: ChatServer
) -> None:
    page = await open_page(browser, staff_server, MOBILE)
    first = await listener_ws(staff_server)
    await use_control(page, "#talk-btn")
    room = (await first.expect("matched"))["room"]
    await expect(page.get_by_role("tab", name=f"Private: {first.name}")).to_be_visible()
    second = await WsClient.open(staff_server.http_port)
    await second.request({"type": "auth", "token": LISTENER_TOKEN}, "notice")
    await second.request({"type": "listen", "on": True}, "notice")
    handed = {"type": "handoff", "room": room, "note": "they like talking about music"}
    await first.request(handed, "ended")
    tab = page.get_by_role("tab", name=f"Private: {second.name}")
    await expect(tab).to_have_attribute("aria-selected", "true")
    await expect(page.locator(".pane:not([hidden]) .info").last).to_contain_text("music")
    await say(page, "hi again")
    assert (await second.expect("message", room=room))["text"] == "hi again"

    # Ending asks once: "Keep talking" changes nothing.
    await page.get_by_role("button", name="End conversation").click()
    await page.get_by_role("button", name="Keep talking").click()
    await expect(page.get_by_role("button", name="End it")).to_have_count(0)
    await say(page, "still here")
    assert (await second.expect("message", room=room))["text"] == "still here"
    await page.get_by_role("button", name="End conversation").click()
    await page.get_by_role("button", name="End it").click()
    assert (await second.expect("ended", room=room))["reason"] == "partner_left"
    await expect(tab).to_be_visible()  # the tab stays, saying so
    await expect(page.locator(".pane:not([hidden]) .after-end .resource").first).to_be_visible()
    await page.get_by_role("button", name="Helpful").click()
    await expect(page.locator(".feedback")).to_contain_text("Thank you")
    chat = staff_server.chat
    assert chat is not None
    assert await eventually(lambda: chat.counters.get("feedback_helpful") == 1)
    no_page_errors(page)
