"""A safer quick exit and moderator tools that finish the job (issue 14, items 6 and 7).

An Escape that closed a dialog or cleared the box is not half of the double Escape; leaving
a room asks first. Moderators confirm a kick, ban or shadow-mute, choose how long, lift
what they did, set slow mode and locks from the page; a report is listed once; a person
removed by a moderator is told why and for how long, with no button that undoes it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from chatsupport import ChatServer

from ..helpers import WsClient
from ..mod_helpers import MOD_TOKEN
from .test_web import (
    browser,
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


async def notice(ws: WsClient, kind: str) -> dict[str, Any]:
    """The next notice of `kind` (other notices before it are passed over)."""
    for _ in range(50):
        frame = await ws.expect("notice")
        if frame.get("kind") == kind:
            return frame
    raise AssertionError(f"no {kind} notice")


async def still_here(page: Page) -> None:
    """Quick exit blanks the page within the key press: a page with its chat has not left."""
    assert await page.evaluate("document.body.childElementCount") > 0
    assert not await page.evaluate("document.documentElement.classList.contains('leaving')")
    await expect(page.locator("html")).to_have_attribute("data-conn", "online")


# ---- 6. a safer quick exit --------------------------------------------------------------------
async def test_an_escape_that_closed_a_dialog_is_not_half_a_quick_exit(
    browser: Browser, web: ChatServer
) -> None:
    neutral = f"http://127.0.0.1:{web.http_port}/healthz"
    page = await open_page(browser, web)
    await use_control(page, "#name-btn")
    await expect(page.locator("#dlg-settings")).to_be_visible()
    await page.keyboard.press("Escape")  # closes the dialog
    await page.keyboard.press("Escape")  # the first of a pair, not the second
    await expect(page.locator("#dlg-settings")).to_be_hidden()
    await still_here(page)
    await page.keyboard.press("Escape")
    await page.wait_for_url(neutral)


async def test_an_escape_that_cleared_the_box_is_not_half_a_quick_exit(
    browser: Browser, web: ChatServer
) -> None:
    neutral = f"http://127.0.0.1:{web.http_port}/healthz"
    page = await open_page(browser, web)
    box = page.locator("#composer-input")
    await box.fill("half a thought")
    await box.press("Escape")  # hides the words at once...
    await expect(box).to_have_value("")
    await box.press("Control+z")  # ...and they can come back
    await expect(box).to_have_value("half a thought")
    await box.press("Escape")
    await box.press("Escape")
    await still_here(page)
    await box.press("Escape")
    await page.wait_for_url(neutral)


async def test_leaving_a_room_asks_first(browser: Browser, web: ChatServer) -> None:
    page = await open_page(browser, web)
    await say(page, "/join quiet")
    leave = page.get_by_role("button", name="Leave room #quiet")
    await leave.click()
    dialog = page.get_by_role("dialog", name="Leave #quiet?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_role("tab", name="#quiet")).to_have_attribute("aria-selected", "true")
    await say(page, "still in the quiet room")
    await expect(shown(page).filter(has_text="still in the quiet room")).to_have_count(1)
    await leave.click()
    await dialog.get_by_role("button", name="Leave room").click()
    await expect(page.get_by_role("tab", name="#quiet")).to_have_count(0)
    no_page_errors(page)


# ---- 7. moderator tools ---------------------------------------------------------------------
async def signed_in_mod(browser: Browser, server: ChatServer) -> Page:
    page = await open_page(browser, server, bypass_csp=True)  # for axe
    await say(page, f"/auth {MOD_TOKEN}")
    await expect(page.locator("#staff-btn")).to_be_visible()
    return page


async def act_on(mod: Page, author: str, action: str) -> None:
    """Opens the moderator's confirmation for `action` on `author`'s latest message."""
    await mod.get_by_role("button", name=f"Options for the message from {author}").last.click()
    await mod.locator(f"#mod-actions [data-mod={action}]").click()
    await expect(mod.locator("#dlg-confirm")).to_be_visible()


async def test_moderators_confirm_choose_how_long_and_can_lift_it(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    mod = await signed_in_mod(browser, server)
    noisy = await WsClient.open(server.http_port)
    troll = await WsClient.open(server.http_port)
    await noisy.request({"type": "say", "room": "lobby", "text": "LOUD NOISES"}, "message")
    await troll.request({"type": "say", "room": "lobby", "text": "bait"}, "message")
    status = mod.locator("#message-status")

    # Mute: a duration to choose, then done; lifted from the staff panel.
    await act_on(mod, noisy.name, "mute")
    confirm = mod.locator("#dlg-confirm")
    await expect(confirm.get_by_role("heading")).to_have_text(f"Mute {noisy.name}?")
    await expect(confirm.get_by_label("For how long")).to_have_value("10")
    await expect(confirm.get_by_label("Reason they will see (optional)")).to_be_hidden()
    await confirm.get_by_label("For how long").select_option("5")
    await mod.locator("#confirm-ok").click()
    await expect(status).to_have_text(f"{noisy.name} is muted for 5 minutes")
    assert "5 minutes" in (await notice(noisy, "mute"))["text"]
    await mod.locator("#dlg-message [data-close]").click()

    # Shadow-mute: asks, and warns.
    await act_on(mod, troll.name, "shadow")
    await expect(confirm).to_contain_text("Never use this on someone in distress")
    await expect(mod.locator("#confirm-ok")).to_have_text(f"Shadow-mute {troll.name}")
    await mod.locator("#confirm-ok").click()
    await expect(status).to_have_text(re.compile(f"^{troll.name} is shadow-muted for 60 minutes"))
    await mod.locator("#dlg-message [data-close]").click()

    await use_control(mod, "#staff-btn")
    done = mod.get_by_role("list", name="Your recent actions")
    await expect(done.locator("li")).to_have_count(2)
    assert await run_axe(mod) == []
    await done.get_by_role("button", name=f"Lift for {noisy.name}").click()
    await expect(mod.locator("#staff-status")).to_have_text(f"lifted for {noisy.name}: mute")
    await notice(noisy, "unmute")
    await expect(done.locator("li")).to_have_count(1)
    await mod.get_by_label("Lift a ban, mute or shadow-mute").fill(troll.name)
    await mod.locator("#unban-form button").click()
    await expect(mod.locator("#staff-status")).to_have_text(f"lifted for {troll.name}: shadow-mute")

    # Slow mode and lock for the room, from the page.
    await expect(mod.get_by_label("Room", exact=True)).to_have_value("lobby")
    await mod.get_by_label("Slow mode").select_option("30")
    await mod.get_by_role("button", name="Apply").click()
    slow = await notice(noisy, "slow")
    assert "one message every 30 seconds" in slow["text"]
    await mod.get_by_label("Slow mode").select_option("0")
    await mod.get_by_role("button", name="Apply").click()
    await expect(mod.locator("#staff-status")).to_have_text("slow mode is off in #lobby")
    await mod.get_by_role("button", name="Lock room", exact=True).click()
    await notice(noisy, "lock")
    await mod.get_by_role("button", name="Unlock room").click()
    await expect(mod.locator("#staff-status")).to_have_text("#lobby is open again")
    no_page_errors(mod)


async def test_a_report_is_listed_once(browser: Browser, staff_server: ChatServer) -> None:
    server = staff_server
    mod = await signed_in_mod(browser, server)
    author = await WsClient.open(server.http_port)
    reporter = await WsClient.open(server.http_port)
    said = await author.request({"type": "say", "room": "lobby", "text": "unkind"}, "message")
    await reporter.request({"type": "report", "id": said["id"], "reason": "insults"}, "notice")
    await expect(mod.locator("#staff-count")).to_have_text("1")
    await use_control(mod, "#staff-btn")
    cards = mod.locator("#reports .card-item")
    await expect(cards).to_have_count(1)
    await mod.get_by_role("button", name="Load recent reports").click()
    await mod.get_by_role("button", name="Load recent reports").click()
    await expect(mod.locator("#reports .card-item")).to_have_count(1)
    # The answer to the second listing came after its reports: it has all been applied.
    await expect(cards).to_contain_text("Report about")
    await mod.get_by_role("button", name=f"Kick: {author.name}").click()
    await expect(mod.locator("#dlg-confirm")).to_be_visible()
    no_page_errors(mod)


async def test_a_person_removed_is_told_why_and_cannot_undo_it_in_a_click(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    mod = await signed_in_mod(browser, server)
    kicked = await open_page(browser, server, bypass_csp=True)
    banned = await open_page(browser, server)
    kicked_name, banned_name = await my_name(kicked), await my_name(banned)
    await say(kicked, "trouble")
    await say(banned, "more trouble")
    await expect(shown(mod).filter(has_text="more trouble")).to_have_count(1)

    # Cancel changes nothing; the kick, with a reason, is said to them in those words.
    await act_on(mod, kicked_name, "kick")
    await mod.locator("#dlg-confirm [data-close]").click()
    await mod.locator("#dlg-message [data-close]").click()
    await say(kicked, "still here")
    await expect(shown(mod).filter(has_text="still here")).to_have_count(1)
    await act_on(mod, kicked_name, "kick")
    await expect(mod.locator("#confirm-duration")).to_be_hidden()
    await mod.get_by_label("Reason they will see (optional)").fill("spamming the room")
    await mod.locator("#confirm-ok").click()
    await expect(mod.locator("#message-status")).to_have_text(f"{kicked_name} was disconnected")
    await mod.locator("#dlg-message [data-close]").click()
    await expect(kicked.locator("html")).to_have_attribute("data-conn", "stopped")
    await expect(kicked.locator("#conn-text")).to_have_text(
        "A moderator disconnected you: spamming the room. You can come back later, as someone new."
    )
    await expect(kicked.locator("#conn-retry")).to_be_hidden()  # no "Start again"
    assert await run_axe(kicked) == []

    await act_on(mod, banned_name, "ban")
    await mod.get_by_label("For how long").select_option("30")
    await mod.locator("#confirm-ok").click()
    await expect(mod.locator("#message-status")).to_have_text(
        f"{banned_name} is banned for 30 minutes, their network for 30 minutes"
    )
    await expect(banned.locator("#conn-text")).to_have_text(
        "A moderator banned you from the chat for 30 minutes, and everyone on your network "
        "for 30 minutes (a school, an office or a mobile network can share one address). "
        "If you need someone to talk to now, help lines stay open to you. "
        "You cannot chat here until the ban ends."
    )
    await expect(banned.locator("#conn-retry")).to_be_hidden()
    for page in (mod, kicked, banned):
        no_page_errors(page)
