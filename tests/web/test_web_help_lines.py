"""Help lines are exact on the web page (CONTRACT §8), for every packaged region.

The page once built `tel:` links by stripping non-digits from free text, so "999 or 112"
became tel:999112. Here a real Chromium opens Get help now and the crisis card for each
region of the packaged file, and every link it renders is compared with the file: each
call or text link is one listed number dialled as listed, and every line has a way in.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from chatsupport import ChatServer, loading
from chatsupport.core.resources import INTERNATIONAL, Resource

from ..helpers import start_server
from .test_web import MOBILE, browser, no_page_errors, open_page, say

__all__ = ["browser"]  # the fixture, shared with test_web

pytestmark = pytest.mark.browser

PACKAGED = loading.resources()
CRISIS = "some days I want to end my life"
NUMBER_LINK = re.compile(r"^(tel|sms):(\+?[0-9*#]+)(?:\?body=([^&]*))?$")

# Each line as rendered: its name, and the href and text of every link in it.
RENDERED = """list => [...list.querySelectorAll(":scope > li")].map(li => ({
    name: li.querySelector("strong").textContent,
    links: [...li.querySelectorAll("a[href]")].map(a => ({href: a.getAttribute("href"),
                                                          text: a.textContent})),
}))"""


@pytest.fixture
async def web() -> AsyncIterator[ChatServer]:
    # A card after every crisis message, so one page can see the card of every region.
    server = await start_server(crisis_repeat_seconds=0.0)
    yield server
    await server.stop()


def expected_hrefs(entry: Resource) -> list[str]:
    """What the file says each contact dials or opens, spelled out without the server's help."""
    hrefs = []
    for c in entry.contacts:
        if c.kind == "call":
            hrefs.append(f"tel:{c.value}")
        elif c.kind == "text":
            hrefs.append(f"sms:{c.value}" + (f"?body={c.body}" if c.body else ""))
        else:
            hrefs.append(c.value)
    return hrefs


def listed_numbers(code: str) -> set[tuple[str, str, str | None]]:
    return {
        ("tel" if c.kind == "call" else "sms", c.value, c.body)
        for entry in PACKAGED.for_region(code)
        for c in entry.contacts
        if c.kind in ("call", "text")
    }


async def check_rendered(code: str, shown: Locator) -> None:
    lines: list[dict[str, Any]] = await shown.evaluate(RENDERED)
    entries = PACKAGED.for_region(code)
    assert [line["name"] for line in lines] == [e.name for e in entries], code
    listed = listed_numbers(code)
    joined = {a + b for _, a, _ in listed for _, b, _ in listed}
    for line, entry in zip(lines, entries, strict=True):
        hrefs = [link["href"] for link in line["links"]]
        assert hrefs, f"{code}: {entry.name} has no way to reach it"
        assert hrefs == expected_hrefs(entry), (code, entry.name)
        for link in line["links"]:
            found = NUMBER_LINK.match(link["href"])
            if link["href"].startswith(("tel:", "sms:")):
                assert found, (code, link)
                scheme, number, body = found.groups()
                assert (scheme, number, body) in listed, (code, link)
                assert number not in joined - {v for _, v, _ in listed}, (code, link)
                # What the button says is what it dials.
                digits = re.sub(r"[^0-9+*#]", "", link["text"].split(" to ")[-1])
                assert digits == number, (code, link)
            else:
                assert link["href"].startswith("https://"), (code, link)


async def no_sideways_scroll(page: Page, selector: str) -> None:
    overflow = await page.locator(selector).evaluate("n => n.scrollWidth - n.clientWidth")
    assert overflow <= 0, f"{selector} scrolls sideways by {overflow}px"


async def test_every_help_link_of_every_region_is_a_listed_number(
    browser: Browser, web: ChatServer
) -> None:
    page = await open_page(browser, web, MOBILE, locale="en", timezone="Africa/Nairobi")
    options = await page.locator("#region option").evaluate_all("os => os.map(o => o.value)")
    assert sorted(options) == sorted([INTERNATIONAL, *PACKAGED.regions()])

    # Before any region is chosen the crisis card has the international lines.
    await say(page, CRISIS)
    cards = page.locator(".help-card .resources")
    await expect(cards).to_have_count(1)
    await check_rendered(INTERNATIONAL, cards.last)

    dialog = page.locator("#dlg-help")
    status = page.locator("#resources-status")
    for code in options:
        await page.get_by_role("button", name="Get help now").click()
        await expect(dialog).to_be_visible()
        await page.locator("#region").select_option(code)
        heading = f"Help lines for {PACKAGED.region_name(code)}:"
        if code == INTERNATIONAL:
            heading = "International help lines."
        await expect(status).to_contain_text(heading)
        await check_rendered(code, page.locator("#resources"))
        await no_sideways_scroll(page, "#dlg-help")
        await dialog.get_by_role("button", name="Close").click()
        if code == INTERNATIONAL:
            continue  # choosing "anywhere" keeps the region chosen before, by design
        # The region chosen is remembered: the next crisis card shows its lines.
        before = await cards.count()
        await say(page, CRISIS)
        await expect(cards).to_have_count(before + 1)
        await check_rendered(code, cards.last)
    no_page_errors(page)
