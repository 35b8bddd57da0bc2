"""What every chat page has, and a page that never gets its person muted (issue 14, items 4,
5 and 8): the "New messages" line and "Jump to latest", unread counts in the title (and a
discreet mode), one name line for a run of messages, the day on old times, right-to-left
text laid out right to left, mentions marked; a burst paced to the server's budget, every
refused message back in the box; each new message announced once by a polite live region.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import cast

import pytest
from playwright.async_api import Browser, Page, expect

from chatsupport import ChatServer
from chatsupport.transport.ws import HttpConnection

from ..helpers import WsClient, eventually, start_server
from ..mod_helpers import MOD_TOKEN
from .test_web import (
    browser,
    link_of,
    my_name,
    no_page_errors,
    open_page,
    page_session,
    run_axe,
    say,
    shown,
    use_control,
    web,
)

__all__ = ["browser", "web"]  # the fixtures, shared with test_web

pytestmark = pytest.mark.browser

RTL = "مرحبا، أنا هنا أيضا"


LOG = "#panes .pane:not([hidden]) .log"


async def submit_all(page: Page, texts: list[str]) -> list[str]:
    """Sends `texts` from the box as fast as a script can; the notes of the messages waiting."""
    notes: list[str] = await page.evaluate(
        """texts => { const box = document.getElementById("composer-input");
            for (const text of texts) {
              box.value = text; document.getElementById("composer").requestSubmit(); }
            return [...document.querySelectorAll(".pending .pending-note")]
              .map(n => n.textContent); }""",
        texts,
    )
    return notes


async def others_say(ws: WsClient, *texts: str, room: str = "lobby") -> None:
    for text in texts:
        await ws.request({"type": "say", "room": room, "text": text}, "message")


# ---- 4. conversation basics ------------------------------------------------------------------
async def test_new_messages_line_jump_to_latest_and_unread_in_the_title(
    browser: Browser, web: ChatServer
) -> None:
    page = await open_page(browser, web, bypass_csp=True)  # for axe
    other = await WsClient.open(web.http_port)
    await others_say(other, *[f"earlier {n}" for n in range(40)])
    await expect(shown(page).filter(has_text="earlier 39")).to_have_count(1)
    await expect(page).to_have_title("ChatSupport")  # all seen: at the bottom, in front
    jump = page.get_by_role("button", name=re.compile("^Jump to latest"))
    await expect(jump).to_be_hidden()

    # Scrolled up to read: what comes meanwhile is new, and says so.
    await page.locator(LOG).evaluate("log => { log.scrollTop = 0; }")
    await expect(jump).to_be_visible()
    await others_say(other, "fresh one", "fresh two")
    await expect(shown(page).filter(has_text="fresh two")).to_have_count(1)
    divider = page.locator(".divider")
    await expect(divider).to_have_text("New messages")
    after = divider.locator("xpath=following-sibling::li[1]")
    await expect(after.locator(".msg-text")).to_have_text("fresh one")
    await expect(jump).to_have_text("Jump to latest (2 new)")
    await expect(page).to_have_title("(2) ChatSupport")
    assert await run_axe(page) == []
    await jump.click()
    await expect(jump).to_be_hidden()
    await expect(page).to_have_title("ChatSupport")
    await expect(page.locator("#composer-input")).to_be_focused()

    # Another room's news: a count on its tab and in the title; opening it starts at the line.
    await say(page, "/join side")
    # The new room comes to the front when the server says joined: only then back to #lobby.
    await expect(page.get_by_role("tab", name="#side")).to_have_attribute("aria-selected", "true")
    await other.request({"type": "join", "room": "side"}, "joined")
    await page.get_by_role("tab", name="#lobby").click()
    await others_say(other, "over here", room="side")
    side = page.get_by_role("tab", name="#side")
    await expect(side.locator(".unread")).to_have_text("1 new")
    await expect(page).to_have_title("(1) ChatSupport")
    await side.click()
    await expect(side.locator(".unread")).to_be_hidden()
    await expect(page).to_have_title("ChatSupport")

    # Discreet: a neutral title and icon, and no count, whatever comes.
    await use_control(page, "#name-btn")
    await page.get_by_label("Discreet tab").check()
    await page.locator("#dlg-settings [data-close]").click()
    await expect(page).to_have_title("Notes")
    icon = await page.locator("#icon").get_attribute("href")
    assert icon is not None and icon.startswith("data:image/svg+xml,")
    await page.get_by_role("tab", name="#lobby").click()
    await others_say(other, "while discreet", room="side")
    await expect(side.locator(".unread")).to_have_text("1 new")
    await expect(page).to_have_title("Notes")
    await page.reload()  # kept for the tab's session
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    await expect(page).to_have_title("Notes")
    no_page_errors(page)


async def test_runs_days_directions_and_mentions(browser: Browser, web: ChatServer) -> None:
    page = await open_page(browser, web)
    name = await my_name(page)
    other = await WsClient.open(web.http_port)
    await others_say(other, "first of a run", "second of a run", RTL)
    await say(page, "my turn")
    await others_say(other, f"thanks {name.lower()}, good to see you", f"{name}x is not you")

    # A run of messages by one person has one name line (kept for screen readers).
    first = page.locator(".msg", has_text="first of a run")
    second = page.locator(".msg", has_text="second of a run")
    await expect(second).to_have_class(re.compile(r"\bcont\b"))
    await expect(first).not_to_have_class(re.compile(r"\bcont\b"))
    await expect(second.locator(".msg-head")).to_have_class(re.compile(r"\bsr-only\b"))
    await expect(page.locator(".msg", has_text="thanks")).not_to_have_class(re.compile("cont"))

    # Every message and name has dir="auto": right-to-left text is laid out right to left.
    texts = page.locator(".msg .msg-text, .msg .msg-name, #people li > span:first-child")
    assert await texts.count() > 5
    assert set(await texts.evaluate_all("ns => ns.map(n => n.dir)")) == {"auto"}
    rtl = page.locator(".msg-text", has_text=RTL)
    assert await rtl.evaluate("n => getComputedStyle(n).direction") == "rtl"

    # A mention of our name, in any case, is marked; a longer name that starts with it is not.
    mention = page.locator(".msg.mention")
    await expect(mention).to_have_count(1)
    await expect(mention.locator("mark")).to_have_text(name.lower())
    await expect(page.locator(".msg", has_text="is not you")).not_to_have_class(
        re.compile("mention")
    )

    # Times from another day say which day.
    await page.clock.set_system_time(datetime.now() + timedelta(days=3))
    await others_say(other, "three days later, for this page")
    stamp = page.locator(".msg", has_text="three days later").locator("time")
    today = await page.locator(".msg", has_text="my turn").locator("time").inner_text()
    assert "," not in today
    # "Mon 3 Mar, 14:05" (as the browser's locale writes it): the day, then the time.
    await expect(stamp).to_have_text(re.compile(r"^\w.*\w, \S.*$"))
    no_page_errors(page)


# ---- 5. the page's own pace ------------------------------------------------------------------
async def test_a_burst_is_paced_to_the_budget_and_nobody_is_muted(browser: Browser) -> None:
    # A newcomer on probation: half of 4 a second, bursts of 2 (welcome.limits says so).
    server = await start_server(
        msg_rate=4.0, msg_burst=4.0, probation_seconds=300.0, probation_share=0.5
    )
    try:
        page = await open_page(browser, server)
        bystander = await WsClient.open(server.http_port)
        burst = [f"burst {n}" for n in range(8)]
        assert await submit_all(page, burst) == ["Sending…"] * 8  # all shown, as sending
        for text in burst:
            assert (await bystander.expect("message", timeout=15.0))["text"] == text
        await expect(shown(page)).to_have_text(burst)
        await expect(page.locator(".pending")).to_have_count(0)
        await expect(page.locator("#composer-error")).to_have_text("")
        assert server.chat is not None
        assert server.chat.counters.get("rate_limited", 0) == 0
        assert server.chat.counters.get("auto_mutes", 0) == 0
        no_page_errors(page)
    finally:
        await server.stop()


async def test_every_refused_message_goes_back_to_its_box(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    mod = await WsClient.open(server.http_port)
    await mod.request({"type": "auth", "token": MOD_TOKEN}, "notice")
    page = await open_page(browser, server)
    await mod.request({"type": "slow", "room": "lobby", "seconds": 60}, "notice")
    await say(page, "first")
    await expect(shown(page).filter(has_text="first")).to_have_count(1)
    await submit_all(page, ["second", "third"])
    await expect(page.locator("#composer-input")).to_have_value("second\nthird")
    await expect(page.locator("#composer-error")).to_contain_text("slow mode")
    await expect(page.locator(".pending")).to_have_count(0)
    no_page_errors(page)


# ---- 8. new messages announced once -----------------------------------------------------------
async def test_each_new_message_is_announced_once(browser: Browser, web: ChatServer) -> None:
    page = await open_page(browser, web)
    other = await WsClient.open(web.http_port)
    region = page.locator("#announcer")
    assert await region.get_attribute("aria-live") == "polite"
    await others_say(other, "can anyone hear me")
    said = f"{other.name}: can anyone hear me"
    await expect(region.locator("p")).to_have_text([said])
    await say(page, "yes, I can")  # our own words are not read back to us
    await others_say(other, "good")
    await expect(region.locator("p")).to_have_text([said, f"{other.name}: good"])

    # Away and back: the missed messages are counted in one sentence, none read out again.
    await page.context.set_offline(True)
    session = page_session(web, other.uid)
    cast(HttpConnection, link_of(session).sink).transport.abort()  # type: ignore[union-attr]
    assert await eventually(lambda: session.link is None)
    await others_say(other, "missed one", "missed two")
    await page.context.set_offline(False)
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    await expect(shown(page).filter(has_text="missed two")).to_have_count(1)
    await expect(region.locator("p").last).to_have_text("2 new messages in #lobby.")
    texts = await region.locator("p").all_inner_texts()
    assert [t for t in texts if "missed" in t or t == said] == [said]
    no_page_errors(page)
