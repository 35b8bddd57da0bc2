"""The page people arrive at and the phones they hold (issue 14, items 1 and 2).

A new person is welcomed (what this place is, three choices, house rules one tap away,
what is kept and for how long); a returning one is not. On every common phone width the
page never scrolls sideways, in every state a person can reach, and on a 360x740 phone
the controls above the messages take at most a fifth of the height.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.async_api import Browser, Page, expect

from chatsupport import ChatServer

from ..helpers import ROOT, WsClient
from ..mod_helpers import LISTENER_TOKEN, MOD_TOKEN
from .test_web import (
    ARTIFACTS,
    browser,
    no_page_errors,
    open_page,
    run_axe,
    say,
    shown,
    use_control,
)

__all__ = ["browser"]  # the fixture, shared with test_web

pytestmark = pytest.mark.browser

WELCOME = json.loads((ROOT / "src/chatsupport/web/static/welcome.json").read_text())
WIDTHS = (320, 360, 390, 414)
HEIGHT = 740
LONG_NAME = "Wwwwwwwwwwwwwwwwwwwwwwww"  # 24 of the widest letter, no space to break at
LONG_WORD = "W" * 300

# How far the page scrolls sideways: the document with the body's clipping lifted (a clipped
# overflow is content cut off, as bad as a scroll), and every box that scrolls or clips on
# its own (a dialog, a message log). The tab strip scrolls sideways by design, and so does
# the text in a one-line input; text cut with an ellipsis and screen-reader-only boxes clip.
SIDEWAYS = """() => {
  const saved = document.body.style.overflow;
  document.body.style.overflow = "visible";
  const found = [];
  const width = document.documentElement.scrollWidth;
  if (width > innerWidth) found.push(`document: ${width}px in ${innerWidth}px`);
  document.body.style.overflow = saved;
  for (const node of document.querySelectorAll("body *")) {
    if (!node.getClientRects().length || node.closest("#tabs, .sr-only, input")) continue;
    const style = getComputedStyle(node);
    if (style.overflowX === "visible" || style.textOverflow === "ellipsis") continue;
    if (style.clip !== "auto" || node.scrollWidth <= node.clientWidth + 1) continue;
    const what = `${node.tagName.toLowerCase()}#${node.id}.${node.className}`;
    found.push(`${what}: ${node.scrollWidth}px in ${node.clientWidth}px`);
  }
  return found;
}"""
CONTROLS = """() => {
  const log = document.querySelector("#panes .pane:not([hidden]) .log");
  return log.getBoundingClientRect().top;
}"""


async def sideways(pages: dict[int, Page], state: str, found: dict[str, list[str]]) -> None:
    for width, page in pages.items():
        found[f"{width}px {state}"] = await page.evaluate(SIDEWAYS)
    # The narrowest, for a person to look at: tests/artifacts/phone-320-*.png
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^a-z0-9]+", "-", state.lower()).strip("-")
    await pages[WIDTHS[0]].screenshot(path=str(ARTIFACTS / f"phone-320-{name}.png"))


async def controls_height(page: Page) -> float:
    top: float = await page.evaluate(CONTROLS)
    return top


# ---- 1. a calm welcome ---------------------------------------------------------------------
async def test_a_new_person_is_welcomed_and_a_returning_one_is_not(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    phone = {"width": 360, "height": HEIGHT}
    page = await open_page(browser, server, phone, bypass_csp=True, welcome=True)  # for axe
    welcome = page.get_by_role("region", name="Welcome")
    await expect(welcome).to_be_visible()
    await expect(page.locator("#welcome-intro")).to_have_text(WELCOME["intro"])
    await expect(page.locator("#composer")).to_be_hidden()  # the choices first
    for choice in ("Talk one-to-one with a listener", "Join the group chat", "Get help now"):
        await expect(welcome.get_by_role("button", name=choice)).to_be_visible()
    # What is kept, said plainly, with this server's retention time; the rules one tap away.
    kept = [line.replace("{retention}", "10 minutes") for line in WELCOME["kept"]]
    await expect(page.locator("#welcome-kept li")).to_have_text(kept)
    await expect(page.locator("#welcome-rules")).to_be_hidden()
    await page.get_by_text("House rules").click()
    await expect(page.locator("#welcome-rules li")).to_have_text(WELCOME["rules"])
    assert await run_axe(page) == []

    # Help is a choice that keeps the welcome; talking to a listener leaves it for the queue.
    await welcome.get_by_role("button", name="Get help now").click()
    await expect(page.locator("#dlg-help")).to_be_visible()
    await page.locator("#dlg-help [data-close]").click()
    await expect(welcome).to_be_visible()
    await welcome.get_by_role("button", name="Talk one-to-one with a listener").click()
    await expect(welcome).to_be_hidden()
    await expect(page.locator("#queue")).to_be_visible()
    await expect(page.locator("#composer-input")).to_be_visible()

    # A listener comes; the person reloads mid-conversation: a resume, not a new welcome.
    lis = await WsClient.open(server.http_port)
    await lis.request({"type": "auth", "token": LISTENER_TOKEN}, "notice")
    await lis.request({"type": "listen", "on": True}, "notice")
    await expect(page.get_by_role("tab", name=f"Private: {lis.name}")).to_be_visible()
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    await expect(page.get_by_role("tab", name=f"Private: {lis.name}")).to_be_visible()
    await expect(welcome).to_be_hidden()
    await expect(page.locator("#composer-input")).to_be_visible()
    no_page_errors(page)


# ---- 2. fits every phone -------------------------------------------------------------------
@pytest.mark.slow
async def test_no_phone_width_scrolls_sideways_in_any_state(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    found: dict[str, list[str]] = {}
    heights: dict[str, float] = {}
    pages = {
        width: await open_page(browser, server, {"width": width, "height": HEIGHT}, welcome=True)
        for width in WIDTHS
    }
    await sideways(pages, "welcome", found)
    for page in pages.values():
        await page.get_by_role("button", name="Join the group chat").click()

    # Long names and long words, from others and from the person.
    other = await WsClient.open(server.http_port)
    other_name = LONG_NAME[:-1] + "x"
    await other.request({"type": "nick", "name": other_name}, "notice")
    await other.send({"type": "say", "room": "lobby", "text": LONG_WORD})
    for n, page in enumerate(pages.values()):
        # Two letters apart from each other: names one letter apart cannot be present together.
        await say(page, f"/nick {LONG_NAME[:-2]}{n}{n}")
        await expect(page.locator("#my-name")).to_have_text(f"{LONG_NAME[:-2]}{n}{n}")
        await say(page, f"https://example.org/{LONG_WORD}")
    for page in pages.values():
        await expect(shown(page).filter(has_text=LONG_WORD)).to_have_count(5)
    await sideways(pages, "lobby, long names and words", found)
    for width, page in pages.items():
        heights[f"{width}px lobby"] = await controls_height(page)
        if await page.locator("#menu-btn").is_visible():
            await page.locator("#menu-btn").click()
    await sideways(pages, "menu open", found)
    for page in pages.values():
        await page.keyboard.press("Escape")

    # Every dialog, the message's with a moderator's tools, and the staff panel.
    for page in pages.values():
        await say(page, f"/auth {MOD_TOKEN}")
        # Signed in once the page shows the staff button (it is in the DOM from the start,
        # hidden): only then does the page know the role that shows a moderator's tools.
        await expect(page.locator("#staff-btn:not([hidden])")).to_be_attached()
    for control, dialog in (
        ("[data-open=dlg-rooms]", "dlg-rooms"),
        ("#name-btn", "dlg-settings"),
        ("#staff-btn", "dlg-staff"),
    ):
        for page in pages.values():
            await use_control(page, control)
            await expect(page.locator(f"#{dialog}")).to_be_visible()
        await sideways(pages, dialog, found)
        for page in pages.values():
            await page.locator(f"#{dialog} [data-close]").click()
    for page in pages.values():
        await page.get_by_role("button", name="Get help now").first.click()
        await expect(page.locator("#dlg-help .resource").first).to_be_visible()
    await sideways(pages, "dlg-help", found)
    for page in pages.values():
        await page.locator("#dlg-help [data-close]").click()
        await page.get_by_role("button", name=f"Options for the message from {other_name}").click()
    await sideways(pages, "dlg-message", found)
    for page in pages.values():
        await page.locator("#mod-actions [data-mod=kick]").click()
    await sideways(pages, "dlg-confirm (kick)", found)
    for page in pages.values():
        await page.locator("#dlg-confirm [data-close]").click()
        await page.locator("#dlg-message [data-close]").click()

    # Many rooms, with the longest names a room may have.
    for page in pages.values():
        for n in range(8):
            await say(page, f"/join {'a-rather-long-room-name-number-' + str(n):.32}")
        await expect(page.get_by_role("tab")).to_have_count(9)
    await sideways(pages, "nine rooms", found)
    for width, page in pages.items():
        heights[f"{width}px nine rooms"] = await controls_height(page)

    # A private conversation with a listener whose name is long.
    for n, page in enumerate(pages.values()):
        lis = await WsClient.open(server.http_port)
        await lis.request({"type": "nick", "name": f"{LONG_NAME[:-4]}Lx{n}{n}"}, "notice")
        await lis.request({"type": "auth", "token": LISTENER_TOKEN}, "notice")
        await lis.request({"type": "listen", "on": True}, "notice")
        await use_control(page, "#talk-btn")
        room = (await lis.expect("matched"))["room"]
        await lis.send({"type": "say", "room": room, "text": f"hello {LONG_WORD}"})
        await expect(shown(page).filter(has_text="hello")).to_have_count(1)
    await sideways(pages, "private chat", found)
    for width, page in pages.items():
        heights[f"{width}px private chat"] = await controls_height(page)
        await expect(page.get_by_role("button", name="End conversation")).to_be_in_viewport()
        no_page_errors(page)

    problems = [f"{state}: {where}" for state, where in found.items() if where]
    assert not problems, "\n".join(problems)
    # At most a fifth of a 360x740 phone (and of the others, as tall) above the messages.
    assert {state: top for state, top in heights.items() if top > HEIGHT / 5} == {}
