"""The web page in a real Chromium (Playwright), against a real in-process server.

The server runs in the test's own event loop, so a test can reach into it to do what a
flaky network does: abort a page's connection, or let its session expire while it is away.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Playwright,
    WebSocketRoute,
    expect,
)

from chatsupport import ChatServer
from chatsupport.core.session import Link, Session
from chatsupport.transport.ws import HttpConnection

from ..broker.test_cluster import say_until_accepted
from ..helpers import ROOT, TextClient, WsClient, eventually, start_server
from ..mod_helpers import LISTENER_TOKEN, MOD_TOKEN
from ..redis_server import RedisServer

pytestmark = pytest.mark.browser

AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
WAIT_MS = 15_000  # generous: two cores shared with other test runs
MOBILE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
SIZES = (("mobile", MOBILE, "light"), ("mobile-dark", MOBILE, "dark"), ("desktop", DESKTOP, "dark"))

expect.set_options(timeout=WAIT_MS)
PAGE_ERRORS: dict[Page, list[str]] = {}  # uncaught script errors, per page


@pytest.fixture
async def browser(chromium_server: str, playwright: Playwright) -> AsyncIterator[Browser]:
    """This test's connection to the test process's Chromium (tests/conftest.py); closing it
    closes every context the test opened, and leaves Chromium for the next test."""
    connected = await playwright.chromium.connect(chromium_server)
    try:
        yield connected
    finally:
        await connected.close()


@pytest.fixture
async def web() -> AsyncIterator[ChatServer]:
    server = await start_server()
    yield server
    await server.stop()


async def open_page(
    browser: Browser,
    server: ChatServer,
    size: dict[str, int] = DESKTOP,
    scheme: str = "light",
    bypass_csp: bool = False,
    locale: str | None = None,
    timezone: str | None = None,
    welcome: bool = False,
) -> Page:
    """A new person's page, online; past the welcome (into the group) unless `welcome`."""
    # Quick exit must never reach outside this machine: a neutral page on the test server.
    server.config.exit_url = f"http://127.0.0.1:{server.http_port}/healthz"  # read per request
    context = await browser.new_context(
        viewport=cast(Any, size),
        color_scheme=cast(Any, scheme),
        reduced_motion="reduce",
        bypass_csp=bypass_csp,
        locale=locale,  # with the time zone: what the page guesses the region from
        timezone_id=timezone,
    )
    page = await context.new_page()
    errors = PAGE_ERRORS.setdefault(page, [])
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Console errors include Content-Security-Policy violations: the page must cause none.
    # Chromium also logs each WebSocket connection that cannot be made: the tests cause
    # those on purpose (offline, server stopped), as often as the backoff happens to try.
    page.on("console", lambda m: errors.append(m.text) if console_error(m) else None)
    await page.goto(f"http://127.0.0.1:{server.http_port}/")
    await expect(page.locator("html")).to_have_attribute("data-conn", "online")
    if not welcome:
        await page.get_by_role("button", name="Join the group chat").click()
        await expect(page.locator("#composer-input")).to_be_visible()
    return page


async def use_control(page: Page, selector: str) -> None:
    """Clicks one of the chat controls: in the menu on a phone, in the toolbar otherwise."""
    if await page.locator("#menu-btn").is_visible():
        await page.locator("#menu-btn").click()
    await page.locator("#toolbar").locator(selector).first.click()


def console_error(message: ConsoleMessage) -> bool:
    refused = message.text.startswith("WebSocket connection to ") and " failed: " in message.text
    return message.type == "error" and not refused


def no_page_errors(page: Page) -> None:
    assert PAGE_ERRORS.pop(page, []) == []


async def my_name(page: Page) -> str:
    await expect(page.locator("#my-name")).not_to_have_text("…")
    return await page.locator("#my-name").inner_text()


async def say(page: Page, text: str) -> None:
    box = page.locator("#composer-input")
    await box.fill(text)
    await box.press("Enter")
    await expect(box).to_have_value("")


def shown(page: Page) -> Any:
    """Message texts in the room on screen, in order."""
    return page.locator("#panes [role=tabpanel]:not([hidden]) .msg:not(.pending) .msg-text")


def page_session(server: ChatServer, *others: str) -> Session:
    """The one connected WebSocket person who is not one of `others` (the test's own clients)."""
    assert server.chat is not None
    found = [
        s
        for s in server.chat.sessions.values()
        if s.link is not None and s.link.sink.interface == "json" and s.uid not in others
    ]
    assert len(found) == 1, found
    return found[0]


def link_of(session: Session) -> Link:
    assert session.link is not None
    return session.link


async def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is, of any impact (minor included)."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))"""
    )
    return found


# ---- chatting ---------------------------------------------------------------------------------
async def test_two_pages_and_a_netcat_peer_chat(browser: Browser, web: ChatServer) -> None:
    a = await open_page(browser, web)
    b = await open_page(browser, web, MOBILE)
    name_a, name_b = await my_name(a), await my_name(b)
    nc = await TextClient.open(web.tcp_port)

    await say(a, "hello from the first page")
    await expect(shown(b).filter(has_text="hello from the first page")).to_have_count(1)
    assert await nc.expect(lambda s: "first page" in s) == f"<{name_a}> hello from the first page"
    await expect(shown(a).filter(has_text="hello from the first page")).to_have_count(1)

    await nc.send("hi from netcat")
    for page in (a, b):
        line = page.locator(".msg", has_text="hi from netcat")
        await expect(line).to_have_count(1)
        await expect(line.locator(".msg-name")).to_have_text(nc.name)

    await say(b, "/me waves")
    await expect(a.locator(".kind-me .msg-text")).to_have_text(f"* {name_b} waves")
    assert await nc.expect(lambda s: "waves" in s) == f"* {name_b} waves"

    await say(a, "/nick Calm Reader")
    await expect(a.locator("#my-name")).to_have_text("Calm Reader")
    await expect(b.locator(".sys", has_text=f"{name_a} is now known as Calm Reader")).to_have_count(
        1
    )
    await nc.expect(f"-- {name_a} is now known as Calm Reader in #lobby")
    await expect(b.locator("#panes .pane-count")).to_have_text(re.compile(r"^3 here"))
    await expect(a.locator(".msg-text", has_text="hello from the first page")).to_have_count(1)
    for page in (a, b):
        no_page_errors(page)


async def test_rooms_join_switch_and_leave(browser: Browser, web: ChatServer) -> None:
    a = await open_page(browser, web)
    b = await open_page(browser, web)
    await a.get_by_role("button", name="Rooms").click()
    await expect(a.locator("#room-list")).to_contain_text("#lobby")
    await a.locator("#join-input").fill("evening")
    await a.locator("#join-form button").click()
    await expect(a.get_by_role("tab", name="#evening")).to_have_attribute("aria-selected", "true")
    await say(b, "/join evening")
    await expect(b.get_by_role("tab", name="#evening")).to_have_attribute("aria-selected", "true")

    await say(a, "just the evening crowd")
    await expect(shown(b).filter(has_text="just the evening crowd")).to_have_count(1)
    await b.get_by_role("tab", name="#lobby").click()
    await expect(shown(b).filter(has_text="just the evening crowd")).to_have_count(0)
    await say(a, "second one")
    await expect(b.get_by_role("tab", name="#evening").locator(".unread")).to_have_text("1 new")

    await a.get_by_role("button", name="Leave room #evening").click()
    await expect(a.locator("#dlg-confirm")).to_be_visible()  # asks first
    await a.locator("#confirm-ok").click()
    await expect(a.get_by_role("tab", name="#evening")).to_have_count(0)
    await expect(a.get_by_role("tab", name="#lobby")).to_have_attribute("aria-selected", "true")
    await b.get_by_role("tab", name="#evening").click()
    await expect(b.locator(".pane:not([hidden]) .pane-count")).to_have_text(re.compile(r"^1 here"))


async def test_xss_payloads_are_shown_as_text_and_run_nothing(
    browser: Browser, web: ChatServer
) -> None:
    # Without the CSP's help: rendering alone must keep markup inert.
    page = await open_page(browser, web, bypass_csp=True)
    await page.evaluate("window.__xss = 0")
    payloads = [
        '<img src=x onerror="window.__xss=1">',
        "<script>window.__xss=2</script>",
        '<svg onload="window.__xss=3"><a href="javascript:window.__xss=4">x</a></svg>',
        "<b>bold?</b> &lt;entity&gt; &amp;",
    ]
    nc = await TextClient.open(web.tcp_port)
    ws = await WsClient.open(web.http_port)
    # Three connections: each message is seen before the next is sent, so the order is known.
    await nc.send(payloads[0])
    await expect(shown(page).filter(has_text=payloads[0])).to_have_count(1)
    await ws.send({"type": "say", "room": "lobby", "text": payloads[1]})
    await expect(shown(page).filter(has_text=payloads[1])).to_have_count(1)
    await say(page, payloads[2])
    await expect(shown(page).filter(has_text=payloads[2])).to_have_count(1)
    await ws.send({"type": "say", "room": "lobby", "text": f"/me {payloads[3]}"})
    await expect(shown(page)).to_have_count(4)
    texts = await shown(page).all_inner_texts()
    assert texts[:3] == payloads[:3]
    assert texts[3].endswith(payloads[3])
    assert await page.locator("#panes img, #panes script, #panes svg, #panes b").count() == 0
    await page.locator(".msg-act").first.click()
    await expect(page.locator("#message-quote p")).to_have_text(payloads[0])
    assert await page.locator("#message-quote img").count() == 0
    assert await page.evaluate("window.__xss") == 0
    no_page_errors(page)


# ---- reconnect and resume --------------------------------------------------------------------
async def test_a_resume_past_what_the_room_keeps_says_so(browser: Browser) -> None:
    """Away while more was said than the room keeps: the page shows what is kept, once, and
    says plainly that the earlier messages are gone (not that they could not be loaded)."""
    server = await start_server(retention_messages=3)
    try:
        page = await open_page(browser, server)
        ws = await WsClient.open(server.http_port)
        await ws.request({"type": "say", "room": "lobby", "text": "before"}, "message")
        await expect(shown(page).filter(has_text="before")).to_have_count(1)
        await page.context.set_offline(True)  # no reconnecting until the room has moved on
        cast(HttpConnection, link_of(page_session(server, ws.uid)).sink).transport.abort()  # type: ignore[union-attr]
        await expect(page.locator("html")).not_to_have_attribute("data-conn", "online")
        for n in range(1, 9):
            await ws.request({"type": "say", "room": "lobby", "text": f"while away {n}"}, "message")
        await page.context.set_offline(False)
        await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
        await expect(shown(page).filter(has_text=re.compile(r"^while away \d$"))).to_have_text(
            ["while away 6", "while away 7", "while away 8"]
        )
        gap = page.locator(".line.info", has_text="some earlier messages are no longer kept")
        await expect(gap).to_have_count(1)
        no_page_errors(page)
    finally:
        await server.stop()


@pytest.mark.redis
async def test_messages_a_resume_could_not_load_come_in_their_place_once_the_server_is_back(
    browser: Browser,
) -> None:
    """Back while Redis stalls: the page cannot be caught up and says so. Once Redis answers
    again it asks again, and what was said while it was away goes in its place, before what
    was said since (shown already), each once, with a word that it is there now."""
    own = RedisServer().start()
    server = await start_server(broker=own.url())
    held: list[str | bytes] = []  # the page's second asking, held until "since" is shown
    upstreams: list[WebSocketRoute] = []

    def hold_the_fill(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()
        upstreams.append(upstream)

        def to_server(message: str | bytes) -> None:
            if '"ref":"fill"' in str(message):
                held.append(message)
            else:
                upstream.send(message)

        route.on_message(to_server)

    try:
        page = await open_page(browser, server)
        ws = await WsClient.open(server.http_port)
        await ws.request({"type": "say", "room": "lobby", "text": "before"}, "message")
        await expect(shown(page).filter(has_text="before")).to_have_count(1)
        await page.context.set_offline(True)
        cast(HttpConnection, link_of(page_session(server, ws.uid)).sink).transport.abort()  # type: ignore[union-attr]
        await expect(page.locator("html")).not_to_have_attribute("data-conn", "online")
        for n in range(1, 4):
            await ws.request({"type": "say", "room": "lobby", "text": f"while away {n}"}, "message")
        await page.route_web_socket(re.compile(r"/ws\b"), hold_the_fill)
        own.pause()
        try:
            await page.context.set_offline(False)
            await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
            not_yet = page.locator(".line.info", has_text="could not be loaded just now")
            await expect(not_yet).to_have_count(1)
        finally:
            own.resume()
        await say_until_accepted(ws, "since")
        await expect(shown(page)).to_have_text(["before", "since"])  # live, after the gap
        assert await eventually(lambda: len(held) == 1)
        assert json.loads(held[0])["last"] == {"lobby": 1}  # from before the gap
        upstreams[-1].send(held[0])
        texts = ["before", "while away 1", "while away 2", "while away 3", "since"]
        await expect(shown(page)).to_have_text(texts)
        await expect(page.locator(".line.info", has_text="are shown now")).to_have_count(1)
        no_page_errors(page)
    finally:
        await server.stop()
        own.resume()
        own.stop()


async def test_dropped_connection_resumes_each_message_once_in_order(
    browser: Browser, web: ChatServer
) -> None:
    page = await open_page(browser, web)
    ws = await WsClient.open(web.http_port)
    await page.evaluate(
        """() => {
            window.__states = [];
            new MutationObserver(() => window.__states.push(
                document.documentElement.dataset.conn + ':' +
                document.getElementById('conn-text').textContent))
              .observe(document.documentElement, {attributes: true, subtree: true,
                                                  childList: true, characterData: true});
        }"""
    )

    async def others(first: int, last: int) -> None:
        for n in range(first, last + 1):
            await ws.send({"type": "say", "room": "lobby", "text": f"m{n}"})

    await others(1, 3)
    await expect(shown(page).filter(has_text="m3")).to_have_count(1)

    # The server drops the page mid-conversation; others keep talking, the page keeps typing.
    session = page_session(web, ws.uid)
    cast(HttpConnection, link_of(session).sink).transport.abort()  # type: ignore[union-attr]
    await others(4, 6)
    await expect(page.locator("html")).not_to_have_attribute("data-conn", "online")
    await say(page, "typed while away")
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    await expect(page.locator("html")).to_have_attribute("data-conn", "online")
    await others(7, 8)

    # Again, this time with the page's own messages possibly in flight when it drops.
    await page.evaluate(
        """() => { const box = document.getElementById('composer-input');
                   for (const t of ['p1', 'p2', 'p3']) {
                     box.value = t; document.getElementById('composer').requestSubmit(); } }"""
    )
    cast(HttpConnection, link_of(session).sink).transport.abort()  # type: ignore[union-attr]
    await others(9, 10)
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "2")
    await say(page, "done")

    expected = [f"m{n}" for n in range(1, 11)]
    own = ["typed while away", "p1", "p2", "p3", "done"]
    await expect(shown(page).filter(has_text="done")).to_have_count(1)
    await expect(page.locator(".pending")).to_have_count(0)
    texts = await shown(page).all_inner_texts()
    assert [t for t in texts if t in expected] == expected
    assert [t for t in texts if t in own] == own
    assert len(texts) == len(expected) + len(own)

    got: list[str] = []
    while "done" not in got:
        frame = await ws.recv(timeout=WAIT_MS / 1000)
        if frame["type"] == "message" and frame["uid"] == session.uid:
            got.append(frame["text"])
    assert got == own  # the other side too: each once, in order
    states = await page.evaluate("window.__states")
    assert any(s.startswith("reconnecting:Connection lost. Reconnecting") for s in states)
    await expect(page.locator("#conn")).to_be_hidden()
    no_page_errors(page)


async def test_a_reconnect_shows_no_stranger_to_the_others(
    browser: Browser, web: ChatServer
) -> None:
    a = await open_page(browser, web)
    b = await open_page(browser, web)
    name_a = await my_name(a)
    await expect(a.locator(".sys", has_text=re.compile(r" joined \("))).to_have_count(1)  # b
    assert web.chat is not None
    session = next(s for s in web.chat.sessions.values() if s.name == name_a)
    cast(HttpConnection, link_of(session).sink).transport.abort()  # type: ignore[union-attr]
    await expect(a.locator("html")).to_have_attribute("data-reconnects", "1")
    await expect(a.locator("html")).to_have_attribute("data-conn", "online")
    await say(a, "back without a fuss")
    # Presence is sent before the message: once b shows the message, b has seen any presence.
    line = b.locator(".msg", has_text="back without a fuss")
    await expect(line.locator(".msg-name")).to_have_text(name_a)
    presence = b.locator(".sys", has_text=re.compile(r" (joined|left) \("))
    assert await presence.all_inner_texts() == []  # nobody came, nobody went
    await expect(b.locator("#panes .pane-count")).to_have_text(re.compile(r"^2 here"))
    await expect(a.locator("#my-name")).to_have_text(name_a)
    for page in (a, b):
        no_page_errors(page)


async def test_reload_resumes_the_same_person(browser: Browser, web: ChatServer) -> None:
    page = await open_page(browser, web)
    name = await my_name(page)
    await say(page, "before reload")
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    await expect(page.locator("#my-name")).to_have_text(name)
    await expect(shown(page).filter(has_text="before reload")).to_have_count(1)
    await expect(page.locator("#panes .pane-count")).to_have_text(re.compile(r"^1 here"))


async def test_expired_session_starts_a_new_one_and_says_so(
    browser: Browser, web: ChatServer
) -> None:
    page = await open_page(browser, web)
    old_name = await my_name(page)
    await say(page, "/join side-room")
    await expect(page.get_by_role("tab", name="#side-room")).to_have_attribute(
        "aria-selected", "true"
    )
    session = page_session(web)
    assert web.chat is not None
    # The connection drops and, before the page is back, the server has let the session go
    # (as after the retention window).
    cast(HttpConnection, link_of(session).sink).transport.abort()  # type: ignore[union-attr]
    await web.chat.end_session(session)
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    await expect(page.locator("#my-name")).not_to_have_text(old_name)
    await expect(page.get_by_role("tab", name="#lobby")).to_have_attribute("aria-selected", "true")
    await expect(page.locator(".info", has_text="this is a new session")).to_have_count(1)
    await page.get_by_role("tab", name="#side-room").click()
    await expect(page.locator(".pane:not([hidden]) .info").last).to_contain_text("no longer in")
    await page.get_by_role("tab", name="#lobby").click()
    await say(page, "still here")
    await expect(shown(page).filter(has_text="still here")).to_have_count(1)
    no_page_errors(page)


# ---- quick exit ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["button", "escape"])
async def test_quick_exit_leaves_forgets_and_back_does_not_return(
    browser: Browser, web: ChatServer, how: str
) -> None:
    neutral = f"http://127.0.0.1:{web.http_port}/healthz"
    page = await open_page(browser, web)
    chat_url = page.url
    session = page_session(web)
    await say(page, "something private")
    assert await page.evaluate("sessionStorage.length") > 0
    if how == "button":
        await page.get_by_role("button", name="Quick exit").click()
    else:
        await page.keyboard.press("Escape")
        await page.keyboard.press("Escape")
    await page.wait_for_url(neutral, timeout=WAIT_MS)
    assert await page.evaluate("sessionStorage.length + localStorage.length") == 0
    assert web.chat is not None
    chat = web.chat
    assert await eventually(lambda: session.uid not in chat.sessions, timeout=10.0)
    await page.go_back()
    assert page.url != chat_url
    assert "something private" not in await page.content()


async def test_exit_url_is_served_to_the_page(web: ChatServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", web.http_port)
    writer.write(b"GET /config.json HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Cache-Control: no-store" in head
    assert json.loads(body) == {"exit_url": "https://www.wikipedia.org/"}


# ---- errors near the input -------------------------------------------------------------------
async def test_errors_are_shown_next_to_the_message_box(browser: Browser) -> None:
    # Two messages' burst, and a little over for the /who below (reading costs 0.25).
    server = await start_server(msg_rate=0.001, msg_burst=2.5, max_text=20)
    try:
        page = await open_page(browser, server)
        await say(page, "one")
        await say(page, "two")
        # Over the budget the server announced: the page holds it (test_web_conversation.py
        # checks that it goes later) rather than have it refused.
        await say(page, "three")
        await expect(page.locator(".pending", has_text="three")).to_contain_text("Sending…")
        await expect(shown(page)).to_have_text(["one", "two"])
        await expect(page.locator("#composer-error")).to_have_text("")

        box = page.locator("#composer-input")
        await box.fill("x" * 25)
        await expect(page.locator("#counter")).to_have_text("25 / 20")
        await expect(page.locator("#counter")).to_have_class("counter over")
        await expect(page.locator("#composer-error")).to_contain_text("Too long")
        await box.press("Enter")
        await expect(box).to_have_value("x" * 25)  # refused before sending
        await box.fill("/who no such room!")
        await box.press("Enter")
        await expect(page.locator("#composer-error")).to_contain_text("which room")
    finally:
        await server.stop()


# ---- help, ignore, report --------------------------------------------------------------------
async def test_help_ignore_and_report(browser: Browser, web: ChatServer) -> None:
    page = await open_page(browser, web)
    nc = await TextClient.open(web.tcp_port)
    await nc.send("first from netcat")
    await expect(shown(page).filter(has_text="first from netcat")).to_have_count(1)

    await page.get_by_role("button", name="Get help now").click()
    dialog = page.locator("#dlg-help")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator(".resource").first).to_be_visible()  # server's list or fallback
    await page.get_by_role("button", name="Close").click()

    await page.get_by_role("button", name=f"Options for the message from {nc.name}").click()
    await page.locator("#report-form button").click()
    status = page.locator("#message-status")
    await expect(status).not_to_have_text("Sending your report…")
    await expect(status).to_contain_text("moderators will look at it")
    await page.get_by_role("button", name=f"Ignore {nc.name}").click()
    await expect(page.locator("#dlg-message")).to_be_hidden()
    await expect(page.locator(".msg", has_text="first from netcat")).to_be_hidden()
    await nc.send("second from netcat")
    ws = await WsClient.open(web.http_port)  # a sync point: its join is announced after
    await expect(page.locator(".sys", has_text=f"{ws.name} joined")).to_have_count(1)
    await expect(shown(page).filter(has_text="second from netcat")).to_have_count(0)
    await page.get_by_role("button", name="Settings").click()
    await page.get_by_role("button", name=f"Stop ignoring {nc.name}").click()
    await expect(page.locator("#ignored-empty")).to_be_visible()
    no_page_errors(page)


# ---- staff and one-to-one -------------------------------------------------------------------
async def test_staff_view_and_one_to_one(browser: Browser, staff_server: ChatServer) -> None:
    server = staff_server
    mod = await open_page(browser, server)
    await mod.get_by_role("button", name="Settings").click()
    await mod.get_by_text("Staff sign-in").click()
    await mod.get_by_label("Listener or moderator token").fill(MOD_TOKEN)
    await mod.get_by_role("button", name="Sign in").click()
    await expect(mod.locator("#settings-status")).to_have_text("you are signed in as a moderator")
    await mod.get_by_role("button", name="Close").click()
    mod_name = await my_name(mod)
    seeker = await open_page(browser, server, MOBILE)
    seeker_name = await my_name(seeker)
    nc = await TextClient.open(server.tcp_port)
    await say(mod, "moderator here")
    await expect(mod.locator(".msg.mine .badge-mod")).to_have_text("moderator")
    by_mod = seeker.locator(".msg", has_text="moderator here")
    await expect(by_mod.locator(".badge")).to_have_text("moderator")

    # Words of crisis: help lines for the person, an alert for staff.
    await say(seeker, "some days I want to end my life")
    await expect(seeker.locator(".help-card .resource").first).to_be_visible()
    await expect(mod.locator("#staff-count")).to_have_text("1")
    # A report from the seeker reaches the moderator, evidence as text.
    await nc.send("<b>mean words</b>")
    await seeker.get_by_role("button", name=f"Options for the message from {nc.name}").click()
    await seeker.locator("#report-form button").click()
    await expect(seeker.locator("#message-status")).to_contain_text("moderators will look")
    await seeker.locator("#dlg-message [data-close]").click()
    await expect(mod.locator("#staff-count")).to_have_text("2")
    await mod.get_by_role("button", name="Staff").click()
    await expect(mod.locator("#alerts")).to_contain_text("some days I want to end my life")
    await expect(mod.locator("#reports")).to_contain_text("<b>mean words</b>")
    await expect(mod.get_by_role("button", name=f"Kick: {nc.name}")).to_be_visible()
    await mod.get_by_role("switch", name="Available for one-to-one chats").click()
    await expect(mod.locator("#staff-status")).to_contain_text("you are available")
    await expect(mod.get_by_role("switch")).to_be_checked()
    await mod.locator("#dlg-staff [data-close]").click()

    # The seeker asks for a listener, is matched with the moderator, they talk, it ends.
    await use_control(seeker, "#talk-btn")
    private = seeker.get_by_role("tab", name=f"Private: {mod_name}")
    await expect(private).to_have_attribute("aria-selected", "true")
    their_tab = mod.get_by_role("tab", name=f"Private: {seeker_name}")
    await expect(their_tab).to_have_attribute("aria-selected", "true")
    await expect(seeker.locator("#queue")).to_be_hidden()
    await say(seeker, "thank you for being here")
    await expect(shown(mod).filter(has_text="thank you for being here")).to_have_count(1)
    await say(mod, "I'm listening")
    await expect(shown(seeker).filter(has_text="I'm listening")).to_have_count(1)
    # Ending asks once; the tab then stays, saying so, with help lines and "did it help?".
    await seeker.get_by_role("button", name="End conversation").click()
    await seeker.get_by_role("button", name="End it").click()
    await expect(seeker.locator(".pane:not([hidden]) .info").last).to_contain_text(
        "You ended this conversation"
    )
    await expect(seeker.get_by_role("button", name="Helpful")).to_be_visible()
    await expect(mod.locator(".pane:not([hidden]) .info").last).to_contain_text("has left")
    await mod.locator("#composer-input").fill("anyone?")
    await mod.locator("#composer-input").press("Enter")
    await expect(mod.locator("#composer-error")).to_contain_text("ended")
    await mod.get_by_role("button", name=f"Close Private: {seeker_name}").click()
    await expect(their_tab).to_have_count(0)
    for page in (mod, seeker):
        no_page_errors(page)


async def test_a_chat_ended_while_away_shows_its_last_words_then_the_end(
    browser: Browser, staff_server: ChatServer
) -> None:
    server = staff_server
    lis = await WsClient.open(server.http_port)
    await lis.request({"type": "auth", "token": LISTENER_TOKEN}, "notice")
    await lis.request({"type": "listen", "on": True}, "notice")
    page = await open_page(browser, server)
    await page.locator("#talk-btn").click()
    room = (await lis.expect("matched"))["room"]
    private = page.get_by_role("tab", name=f"Private: {lis.name}")
    await expect(private).to_have_attribute("aria-selected", "true")
    await lis.request({"type": "say", "room": room, "text": "one moment"}, "message")
    await expect(shown(page).filter(has_text="one moment")).to_have_count(1)

    # The page is offline (no reconnect can happen) while the listener says goodbye.
    await page.context.set_offline(True)
    session = page_session(server, lis.uid)
    cast(HttpConnection, link_of(session).sink).transport.abort()  # type: ignore[union-attr]
    assert await eventually(lambda: session.link is None)  # seen at the server's next turn
    await lis.request({"type": "say", "room": room, "text": "take care"}, "message")
    await lis.request({"type": "leave", "room": room}, "left")
    await page.context.set_offline(False)

    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    await expect(shown(page).filter(has_text="take care")).to_have_count(1)
    infos = page.locator(".pane:not([hidden]) .info")
    await expect(infos.last).to_contain_text("The other person has left")
    assert [t for t in await infos.all_inner_texts() if "away" in t] == []
    await expect(page.locator("#composer-input")).to_have_attribute(
        "placeholder", "This conversation has ended"
    )
    no_page_errors(page)


# ---- keyboard --------------------------------------------------------------------------------
async def tab_to(page: Page, target: Locator, key: str = "Tab") -> None:
    for _ in range(20):
        if await target.evaluate("b => b === document.activeElement"):
            break
        await page.keyboard.press(key)
    await expect(target).to_be_focused()


async def test_usable_by_keyboard_alone(browser: Browser, web: ChatServer) -> None:
    page = await open_page(browser, web, welcome=True)
    nc = await TextClient.open(web.tcp_port)
    for n in range(3):
        await nc.send(f"line {n}")

    # The welcome's choices are buttons in reading order; the group chat's is the second.
    await page.keyboard.press("Tab")
    await tab_to(page, page.get_by_role("button", name="Join the group chat"))
    await page.keyboard.press("Enter")
    await expect(page.locator("#composer-input")).to_be_focused()
    await expect(shown(page).filter(has_text="line 2")).to_have_count(1)
    await page.keyboard.type("typed with keys")
    await page.keyboard.press("Enter")
    await expect(shown(page).filter(has_text="typed with keys")).to_have_count(1)

    # One tab stop for the whole log, on the newest message (ours: its options can delete
    # it); arrows move between messages.
    newest = page.get_by_role("button", name="Options for your message").last
    await tab_to(page, newest, "Shift+Tab")
    await page.keyboard.press("ArrowUp")
    await expect(page.locator(".msg", has_text="line 2").locator(".msg-act")).to_be_focused()
    await page.keyboard.press("ArrowUp")
    middle = page.locator(".msg", has_text="line 1").locator(".msg-act")
    await expect(middle).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#dlg-message")).to_be_visible()
    await expect(page.locator("#message-quote p")).to_have_text("line 1")
    await page.keyboard.press("Escape")  # once: closes the dialog (twice would be quick exit)
    await expect(page.locator("#dlg-message")).to_be_hidden()
    await expect(middle).to_be_focused()

    # Tabs: arrow keys switch rooms.
    await say(page, "/join kbd")
    await page.get_by_role("tab", name="#kbd").focus()
    await page.keyboard.press("ArrowLeft")
    await expect(page.get_by_role("tab", name="#lobby")).to_be_focused()
    await expect(page.get_by_role("tab", name="#lobby")).to_have_attribute("aria-selected", "true")

    # Back again (a resume, no welcome): the first Tab offers the way to the message box.
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-reconnects", "1")
    await page.keyboard.press("Tab")
    await expect(page.locator(".skip")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#composer-input")).to_be_focused()
    no_page_errors(page)


# ---- accessibility and screenshots ----------------------------------------------------------
async def conversation(server: ChatServer, tokens_listener: str) -> list[TextClient | WsClient]:
    """A small, realistic conversation for audits and screenshots."""
    river = await TextClient.open(server.tcp_port)
    await river.send("/nick River")
    listener = await WsClient.open(server.http_port)
    await listener.request({"type": "nick", "name": "Maple"}, "notice")
    await listener.request({"type": "auth", "token": tokens_listener}, "notice")
    await river.send("hi all. rough week, couldn't sleep again")
    await listener.send(
        {
            "type": "say",
            "room": "lobby",
            "text": "Hi River, I'm one of the volunteer listeners. Want to tell us "
            "what's been keeping you up?",
        }
    )
    await river.send("/me sighs")
    await river.send("work mostly. and feeling like I can't talk to anyone about it")
    robin = await WsClient.open(server.http_port)  # whose phone then loses its network
    await robin.request({"type": "nick", "name": "Robin"}, "notice")
    await robin.request({"type": "say", "room": "lobby", "text": "hugs, River"}, "message")
    robin.ws.transport.abort()
    return [river, listener, robin]


@pytest.mark.slow
async def test_accessibility_and_screenshots(browser: Browser, staff_server: ChatServer) -> None:
    """axe-core finds nothing, of any impact, in the main states at 360 px (light and dark)
    and 1280 px; each state's screenshot goes to tests/artifacts (docs/web.md shows them)."""
    server = staff_server
    views: dict[str, list[dict[str, Any]]] = {}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = {}
    for label, size, scheme in SIZES:  # bypass_csp: to inject axe
        pages[label] = await open_page(browser, server, size, scheme, bypass_csp=True, welcome=True)

    async def check(page: Page, label: str, view: str) -> None:
        await page.screenshot(path=str(ARTIFACTS / f"screenshot-{label}-{view}.png"))
        views[f"{label} {view}"] = await run_axe(page)

    for label, page in pages.items():
        await expect(page.locator("#welcome-rules li").first).to_be_attached()
        await check(page, label, "welcome")
        await page.get_by_role("button", name="Join the group chat").click()
    await conversation(server, LISTENER_TOKEN)
    await say(pages["mobile"], "same here honestly. glad this place exists")
    for label, page in pages.items():
        await expect(shown(page).filter(has_text="glad this place exists")).to_have_count(1)
        await expect(page.locator(".sys", has_text="Robin is away")).to_have_count(1)
        await expect(page.locator(".pending")).to_have_count(0)
        await check(page, label, "chat")
        if await page.locator("#menu-btn").is_visible():
            await page.locator("#menu-btn").click()
            await check(page, label, "menu")
            await page.keyboard.press("Escape")
        for control, dialog in (
            ("[data-open=dlg-rooms]", "dlg-rooms"),
            ("#name-btn", "dlg-settings"),
        ):
            await use_control(page, control)
            await expect(page.locator(f"#{dialog}")).to_be_visible()
            await check(page, label, dialog)
            await page.locator(f"#{dialog} [data-close]").click()
        await page.get_by_role("button", name="Get help now").first.click()
        await expect(page.locator("#dlg-help .resource").first).to_be_visible()
        await check(page, label, "dlg-help")
        await page.locator("#dlg-help [data-close]").click()
        await page.get_by_role("button", name="Leave room #lobby").click()
        await check(page, label, "dlg-confirm")
        await page.locator("#dlg-confirm [data-close]").click()
        await say(page, f"/auth {MOD_TOKEN}")
        # Signed in once the page shows the staff button (it is in the DOM from the start,
        # hidden): only then does the page know the role that shows a moderator's tools.
        await expect(page.locator("#staff-btn:not([hidden])")).to_be_attached()
        await page.get_by_role("button", name="Options for the message from River").first.click()
        await expect(page.locator("#mod-actions")).to_be_visible()
        await check(page, label, "dlg-message")
        await page.locator("#mod-actions [data-mod=ban]").click()
        await check(page, label, "dlg-confirm-ban")
        await page.locator("#dlg-confirm [data-close]").click()
        await page.locator("#dlg-message [data-close]").click()
        await use_control(page, "#staff-btn")
        await expect(page.locator("#mod-tools")).to_be_visible()
        await check(page, label, "dlg-staff")
        await page.locator("#dlg-staff [data-close]").click()
        no_page_errors(page)
    assert {view: found for view, found in views.items() if found} == {}
    for label in ("mobile", "desktop"):
        assert (ARTIFACTS / f"screenshot-{label}-chat.png").stat().st_size > 10_000
