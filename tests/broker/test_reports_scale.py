"""Reports that scale (issue 19): merged per person, capped per reporter, bounded in number,
listed a page at a time; run against each broker (in memory, and a real Redis); and the
budget checked before any work, over the wire."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from chatsupport import ChatServer
from chatsupport.broker import make_broker
from chatsupport.core.ports import Broker, FiledReport

from ..helpers import TEST_ADDRESS_KEY, WsClient, start_server
from ..mod_helpers import staff_tcp, staff_ws, write_tokens
from ..redis_server import delete_prefix, redis_server_fixture

redis_server = pytest.fixture(scope="session")(redis_server_fixture)
BACKENDS = [pytest.param("memory"), pytest.param("redis", marks=pytest.mark.redis)]
DAY = 86400.0


@pytest.fixture(params=BACKENDS)
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    url, server, prefix = "memory", None, f"r{uuid.uuid4().hex[:10]}:"
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        url = server.url(prefix)
    kept = make_broker(
        url,
        retention_seconds=600.0,
        retention_messages=50,
        wallclock=time.time,
        secret=TEST_ADDRESS_KEY.encode(),
    )
    await kept.start(lambda *_: None, lambda *_: None)
    yield kept
    await kept.stop()
    if server is not None:
        delete_prefix(server, prefix)


def filed(
    n: int, reporter: str = "reporter-a", about: str = "", room: str = "lobby"
) -> FiledReport:
    report_id = f"r{n:04d}"
    event = {"type": "report", "id": report_id, "about": about or f"u{n}", "n": n}
    return FiledReport(
        report_id, room, reporter, about or f"u{n}", msgspec.json.encode(event).decode()
    )


def numbers(kept: list) -> list[int]:  # type: ignore[type-arg]
    return [msgspec.json.decode(k.event)["n"] for k in kept]


async def test_same_person_merges_and_each_reporter_is_capped(broker: Broker) -> None:
    first = await broker.file_report(filed(1, "reporter-a", "u9"), DAY, 100, 2)
    assert (first.outcome, first.id, first.count) == ("new", "r0001", 1)
    merged = await broker.file_report(filed(2, "reporter-b", "u9"), DAY, 100, 2)
    assert (merged.outcome, merged.id, merged.count) == ("merged", "r0001", 2)
    again = await broker.file_report(filed(3, "reporter-a", "u9"), DAY, 100, 2)
    assert again.outcome == "again"
    elsewhere = await broker.file_report(filed(4, "reporter-a", "u9", room="help"), DAY, 100, 2)
    assert elsewhere.outcome == "new"  # the same person in another room is another report
    capped = await broker.file_report(filed(5, "reporter-a", "u5"), DAY, 100, 2)
    assert capped.outcome == "capped"  # two open reports already
    kept, more = await broker.list_reports("open", None, None, 10)
    assert numbers(kept) == [4, 1] and [k.count for k in kept] == [1, 2] and not more

    # Seen to: it leaves the open list, frees the reporter, and the person can be reported anew.
    handled = await broker.mark_report("r0001", "handled")
    assert handled is not None and handled.state == "handled" and handled.count == 2
    assert numbers((await broker.list_reports("handled", None, None, 10))[0]) == [1]
    assert (await broker.file_report(filed(6, "reporter-a", "u9"), DAY, 100, 2)).outcome == "new"
    assert await broker.mark_report("r9999", "handled") is None


async def test_pages_newest_first_by_room_and_state(broker: Broker) -> None:
    for n in range(1, 46):
        room = "lobby" if n % 3 else "help"
        await broker.file_report(filed(n, f"reporter-{n}", room=room), DAY, 1000, 5)
    page, more = await broker.list_reports("open", None, None, 20)
    assert numbers(page) == list(range(45, 25, -1)) and more
    page, more = await broker.list_reports("open", None, "r0026", 20)
    assert numbers(page) == list(range(25, 5, -1)) and more
    page, more = await broker.list_reports("open", None, "r0006", 20)
    assert numbers(page) == [5, 4, 3, 2, 1] and not more
    page, more = await broker.list_reports("open", "help", None, 10)
    assert numbers(page) == [45, 42, 39, 36, 33, 30, 27, 24, 21, 18] and more
    page, more = await broker.list_reports("open", "help", "r0018", 10)
    assert numbers(page) == [15, 12, 9, 6, 3] and not more
    await broker.mark_report("r0044", "handled")
    assert 44 not in numbers((await broker.list_reports("open", None, None, 5))[0])
    assert numbers((await broker.list_reports("handled", "lobby", None, 5))[0]) == [44]
    assert (await broker.list_reports("handled", "help", None, 5))[0] == []


async def test_junk_cannot_push_real_reports_out(broker: Broker) -> None:
    for n in range(1, 4):  # three real reports, seen to later than they came
        await broker.file_report(filed(n, f"reporter-{n}"), DAY, 10, 3)
    for n in range(10, 40):  # one junk reporter filing about everyone
        await broker.file_report(filed(n, "reporter-junk"), DAY, 10, 3)
    kept, _ = await broker.list_reports("open", None, None, 20)
    assert numbers(kept) == [12, 11, 10, 3, 2, 1]  # the junk stops at its cap
    await broker.mark_report("r0002", "handled")
    for n in range(40, 50):  # many reporters: past `most`, handled reports go first
        await broker.file_report(filed(n, f"reporter-{n}"), DAY, 10, 3)
    kept, _ = await broker.list_reports("open", None, None, 20)
    handled, _ = await broker.list_reports("handled", None, None, 20)
    assert len(kept) + len(handled) == 10 and handled == []
    assert numbers(kept) == [49, 48, 47, 46, 45, 44, 43, 42, 41, 40]


async def test_reports_expire(broker: Broker) -> None:
    await broker.file_report(filed(1), 0.3, 10, 3)
    assert len((await broker.list_reports("open", None, None, 10))[0]) == 1
    await asyncio.sleep(0.5)  # the memory broker answers from its wall clock; Redis expires
    assert await broker.list_reports("open", None, None, 10) == ([], False)
    assert (await broker.file_report(filed(2), DAY, 10, 3)).outcome == "new"


# ---- over the wire -------------------------------------------------------------------------
@pytest.fixture
async def staffed(tmp_path: Path) -> AsyncIterator[ChatServer]:
    server = await start_server(tokens_file=write_tokens(tmp_path), reports_per_hour=3)
    yield server
    await server.stop()


async def test_the_budget_is_checked_before_anything_else(staffed: ChatServer) -> None:
    reporter = await WsClient.open(staffed.http_port)
    for _ in range(3):  # messages that do not exist: refused, and counted
        refused = await reporter.request({"type": "report", "id": 999, "reason": "x"}, "error")
        assert refused["code"] == "bad_request"
    refused = await reporter.request({"type": "report", "id": 999, "reason": "x"}, "error")
    assert refused["code"] == "rate_limited"


async def test_moderators_page_through_reports_and_mark_them_handled(staffed: ChatServer) -> None:
    mod = await staff_ws(staffed.http_port)
    trolls = [await WsClient.open(staffed.http_port) for _ in range(25)]
    for n, troll in enumerate(trolls):
        said = await troll.request({"type": "say", "room": "lobby", "text": f"rude {n}"}, "message")
        reporter = await WsClient.open(staffed.http_port)
        await reporter.request({"type": "report", "id": said["id"], "reason": "rude"}, "notice")
    await mod.send({"type": "reports", "ref": "p1"})
    end = await mod.expect("notice", ref="p1")
    first = [f for f in mod.backlog if f.get("ref") == "p1" and f["type"] == "report"]
    mod.backlog = [f for f in mod.backlog if f.get("ref") != "p1"]
    assert [r["evidence"][-1]["text"] for r in first] == [f"rude {n}" for n in range(24, 4, -1)]
    assert end["before"] == first[-1]["id"] and end["text"].startswith("20 report(s), open")
    await mod.send({"type": "reports", "before": end["before"], "ref": "p2"})
    end = await mod.expect("notice", ref="p2")
    second = [f for f in mod.backlog if f.get("ref") == "p2" and f["type"] == "report"]
    assert [r["evidence"][-1]["text"] for r in second] == [f"rude {n}" for n in range(4, -1, -1)]
    assert "before" not in end

    done = await mod.request({"type": "handled", "id": first[0]["id"]}, "notice")
    assert done["kind"] == "handled"
    mod_text = await staff_tcp(staffed.tcp_port)  # after the live reports
    await mod_text.send("/reports handled")
    line = await mod_text.expect(lambda s: s.startswith("*** [report"))
    assert line.startswith(f"*** [report {first[0]['id']}, handled] ")
    await mod_text.expect("-- 1 report(s), handled, newest first")
    await mod_text.send(f"/reports before {second[-2]['id']}")
    await mod_text.expect(lambda s: s.startswith(f"*** [report {second[-1]['id']}]"))
    await mod_text.expect("-- 1 report(s), open, newest first")


async def test_a_second_reporter_merges_into_the_open_report(staffed: ChatServer) -> None:
    mod = await staff_ws(staffed.http_port)
    troll = await WsClient.open(staffed.http_port)
    said = await troll.request({"type": "say", "room": "lobby", "text": "go away"}, "message")
    ids = []
    for _ in range(2):
        reporter = await WsClient.open(staffed.http_port)
        await reporter.request({"type": "report", "id": said["id"], "reason": "rude"}, "notice")
        ids.append(await mod.expect("report"))
    assert ids[0]["id"] == ids[1]["id"] and ids[1]["count"] == 2 and "count" not in ids[0]
    listed = await mod.request({"type": "reports"}, "report")
    assert listed["count"] == 2 and listed["id"] == ids[0]["id"]
    mod_text = await staff_tcp(staffed.tcp_port)
    await mod_text.send("/reports")
    line = await mod_text.expect(lambda s: s.startswith("*** [report"))
    assert line.startswith(f"*** [report {ids[0]['id']}, 2 reports] {troll.name} in #lobby")
