"""The staff panel lists reports a page at a time (issue 19): the first page, newest first,
then older ones on request, never the whole store at once."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from chatsupport import ChatServer

from ..helpers import WsClient
from ..mod_helpers import MOD_TOKEN
from .test_web import browser, no_page_errors, open_page, say, use_control

__all__ = ["browser"]  # the fixture, shared with test_web

pytestmark = pytest.mark.browser


async def test_the_staff_panel_loads_reports_a_page_at_a_time(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    for n in range(23):  # filed before the moderator signs in: only a listing shows them
        author, reporter = (
            await WsClient.open(server.http_port),
            await WsClient.open(server.http_port),
        )
        said = await author.request(
            {"type": "say", "room": "lobby", "text": f"rude {n}"}, "message"
        )
        await reporter.request({"type": "report", "id": said["id"], "reason": "rude"}, "notice")
    mod = await open_page(browser, server)
    await say(mod, f"/auth {MOD_TOKEN}")
    await expect(mod.locator("#staff-btn")).to_be_visible()
    await use_control(mod, "#staff-btn")
    await mod.get_by_role("button", name="Load recent reports").click()
    cards = mod.locator("#reports .card-item")
    await expect(cards).to_have_count(20)
    await expect(cards.first).to_contain_text("rude 22")  # newest first
    await expect(cards.last).to_contain_text("rude 3")
    await mod.get_by_role("button", name="Load older reports").click()
    await expect(cards).to_have_count(23)
    await expect(cards.last).to_contain_text("rude 0")
    await expect(mod.get_by_role("button", name="Load older reports")).to_be_hidden()
    no_page_errors(mod)
