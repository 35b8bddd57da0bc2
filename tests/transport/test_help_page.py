"""Help that reaches a person at once, outside the chat's own page: `GET /help` (no
JavaScript, the same lines, the same headers, reachable when banned) and plain TCP
(`/resources` asks once, `/region`, the greeting names the help page, an honest queue)."""

from __future__ import annotations

import asyncio
import re

from chatsupport import ChatServer, loading
from chatsupport.core.resources import INTERNATIONAL
from chatsupport.transport.http import CSP

from ..helpers import WAIT, TextClient, WsClient
from ..mod_helpers import staff_ws, ws_from
from ..web.test_web_help_lines import expected_hrefs
from .test_http import assert_strict, http

PACKAGED = loading.resources()
HREF = re.compile(r'href="([^"]+)"')


def links_of(html: str) -> list[str]:
    """Every tel:, sms: and web link the page has (not its own /help?region= ones)."""
    return [
        h.replace("&amp;", "&")
        for h in HREF.findall(html)
        if not h.startswith("/") and not h.startswith("data:")
    ]


async def test_the_help_page_lists_every_regions_lines_exactly(server: ChatServer) -> None:
    for code in [INTERNATIONAL, *PACKAGED.regions()]:
        status, headers, body = await http(server.http_port, f"/help?region={code.lower()}")
        assert status == 200
        assert_strict(headers)
        assert headers["content-security-policy"] == CSP
        html = body.decode()
        assert "<script" not in html
        wanted = [h for entry in PACKAGED.for_region(code) for h in expected_hrefs(entry)]
        assert links_of(html) == wanted, code  # the region's own first, then international
        for other in PACKAGED.regions():  # every other region one tap away
            assert f'href="/help?region={other}"' in html
    status, _, body = await http(server.http_port, "/help?region=Atlantis")
    assert status == 200 and "International help lines" in body.decode()


async def test_the_help_page_reaches_a_banned_person(staff_server: ChatServer) -> None:
    port = staff_server.http_port
    mod = await staff_ws(port)
    banned = await ws_from(port, "127.0.0.9")
    await mod.request({"type": "ban", "uid": banned.uid, "minutes": 10}, "notice")
    refused = await ws_from(port, "127.0.0.9", welcome=False)
    assert (await refused.expect("error"))["code"] == "banned"
    # From the banned address itself: help is for everyone.
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.9", 0))
    writer.write(f"GET /help HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    raw = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    assert raw.startswith(b"HTTP/1.1 200") and b"tel:112" in raw


async def test_the_index_page_links_the_help_page_for_no_script(server: ChatServer) -> None:
    _, _, body = await http(server.http_port, "/")
    noscript = body.decode().split("<noscript>", 1)[1].split("</noscript>", 1)[0]
    assert 'href="/help"' in noscript


async def test_netcat_greeting_resources_region_and_the_queue(server: ChatServer) -> None:
    tcp = await TextClient.open(server.tcp_port, greet=False)
    greeting = await tcp.line()
    assert greeting.endswith(f"or http://127.0.0.1:{server.http_port}/help in a browser")
    await tcp.send("/resources")
    assert await tcp.expect(lambda s: s.startswith("-- International")) == (
        "-- International help lines. Which country are you in? Its lines will come first."
    )
    assert (await tcp.expect(lambda s: "/region" in s)).startswith(
        "-- for the lines of your country: /region CODE (AT, AU,"
    )
    await tcp.send("/resources")  # asked once: not again
    assert await tcp.expect(lambda s: s.startswith("-- International")) == (
        "-- International help lines."
    )
    await tcp.send("/region uk")
    assert await tcp.expect(lambda s: "come first" in s) == (
        "-- Help lines for United Kingdom will come first."
    )
    await tcp.send("/resources")
    assert await tcp.expect(lambda s: s.startswith("-- Help lines")) == (
        "-- Help lines for United Kingdom:"
    )
    assert (await tcp.line()).startswith("-- Samaritans: call 116 123")
    await tcp.send("/region Atlantis")
    assert (await tcp.expect(lambda s: s.startswith("!!"))).startswith(
        "!! no help lines for 'Atlantis' yet"
    )

    await tcp.send("/talk my exams")
    assert await tcp.expect(lambda s: "queue" in s) == (
        "-- you are number 1 in the queue for a listener"
    )
    assert await tcp.line() == (
        "-- no listener is on right now; you keep your place. Help lines: /resources"
    )
    ws = await WsClient.open(server.http_port)
    region = await ws.request({"type": "region", "code": "de"}, "notice")
    assert (region["kind"], region["region"]) == ("region", "DE")
    assert region["resources"][0]["region"] == "DE"
