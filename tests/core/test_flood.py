"""Flood control, black-box, with the public defaults (not the test helper's generous ones):
per-connection budget, escalation to a mute, probation, per-address caps (CONTRACT §6)."""

from __future__ import annotations

import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from chatsupport import Config

from ..helpers import TextClient, WsClient, eventually, start_server
from ..mod_helpers import expect_kind, staff_ws, write_tokens, ws_from, ws_sync

DEFAULTS = Config()
PUBLIC = {
    "msg_rate": DEFAULTS.msg_rate,
    "msg_burst": DEFAULTS.msg_burst,
    "max_conns_per_address": DEFAULTS.max_conns_per_address,
    "new_conns_per_address": DEFAULTS.new_conns_per_address,
}


async def flood(client: WsClient, count: int) -> tuple[list[dict[str, Any]], float]:
    """Send `count` messages at once; the reply to each (by ref) and how long it all took."""
    started = time.monotonic()
    for n in range(count):
        await client.send({"type": "say", "room": "lobby", "text": f"flood {n}", "ref": f"f{n}"})
    replies: dict[str, dict[str, Any]] = {}
    others: list[dict[str, Any]] = []
    for _ in range(count * 3):  # replies, plus anything unrelated that arrives meanwhile
        if len(replies) == count:
            break
        frame = await client.recv()
        if str(frame.get("ref", "")).startswith("f"):
            replies[frame["ref"]] = frame
        else:
            others.append(frame)
    client.backlog = others + client.backlog
    assert len(replies) == count
    return [replies[f"f{n}"] for n in range(count)], time.monotonic() - started


async def test_a_flood_of_100_gets_rate_limited_and_only_the_budget_is_broadcast(
    tmp_path: Path,
) -> None:
    server = await start_server(**PUBLIC, probation_seconds=0, tokens_file=write_tokens(tmp_path))
    try:
        mod = await staff_ws(server.http_port)
        flooder, observer = (
            await WsClient.open(server.http_port),
            await WsClient.open(server.http_port),
        )
        replies, elapsed = await flood(flooder, 100)
        accepted = [r for r in replies if r["type"] == "message"]
        codes = {r["code"] for r in replies if r["type"] == "error"}
        assert "rate_limited" in codes and codes <= {"rate_limited", "muted"}
        budget = DEFAULTS.msg_burst + DEFAULTS.msg_rate * elapsed + 1
        assert 1 <= len(accepted) <= budget
        seen = [t for t in _texts(await ws_sync(observer)) if t.startswith("flood")]
        assert seen == [r["text"] for r in accepted]
        # Repeat offenders are muted for a while, told why, and moderators hear of it.
        mute = await expect_kind(flooder, "mute")
        assert "too fast" in mute["text"]
        alert = await expect_kind(mod, "flood", "alert")
        assert alert["uid"] == flooder.uid
        assert (await flooder.request({"type": "say", "text": "hi"}, "error"))["code"] in (
            "muted",
            "rate_limited",
        )
    finally:
        await server.stop()


def _texts(frames: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in frames if f.get("type") == "message"]


async def test_a_text_flood_is_slowed_down_not_cut_off() -> None:
    server = await start_server(**PUBLIC, probation_seconds=0)
    try:
        flooder, observer = (
            await TextClient.open(server.tcp_port),
            await TextClient.open(server.tcp_port),
        )
        started = time.monotonic()
        await flooder.send(b"".join(f"flood {n}\n".encode() for n in range(100)))
        burst = int(DEFAULTS.msg_burst)
        seen = [await observer.expect(lambda s: "flood" in s) for _ in range(burst)]
        more_until = time.monotonic() + 1.5  # then whatever else comes in a while
        while (left := more_until - time.monotonic()) > 0:
            try:
                seen.append(await observer.line(timeout=left))
            except TimeoutError:
                break
        elapsed = time.monotonic() - started
        seen = [line for line in seen if "flood" in line]
        assert len(seen) <= DEFAULTS.msg_burst + DEFAULTS.msg_rate * elapsed + 1
        assert seen == [f"<{flooder.name}> flood {n}" for n in range(len(seen))]
        # Not cut off, not refused: the observer's lines have no gap, and a refusal of any of
        # them would have been written to the flooder before the next one was broadcast; the
        # window above (for the rate) has long let such a line arrive, so read what is there.
        # (The flooder has no barrier of its own: a /who would wait behind the paced lines.)
        arrived: list[str] = []
        with suppress(TimeoutError):
            for _ in range(200):
                arrived.append(await flooder.line(timeout=0.01))
        assert not [line for line in arrived if line.startswith("!!")]
        assert not flooder.reader.at_eof()
    finally:
        await server.stop()


async def test_new_arrivals_on_probation_get_a_smaller_budget() -> None:
    server = await start_server(**PUBLIC, probation_seconds=DEFAULTS.probation_seconds)
    try:
        newcomer, observer = (
            await WsClient.open(server.http_port),
            await WsClient.open(server.http_port),
        )
        replies, elapsed = await flood(newcomer, 12)
        accepted = [r for r in replies if r["type"] == "message"]
        share = DEFAULTS.probation_share
        assert len(accepted) <= DEFAULTS.msg_burst * share + DEFAULTS.msg_rate * share * elapsed + 1
        assert "first 5 minutes" in (await expect_kind(newcomer, "probation"))["text"]
        assert len([t for t in _texts(await ws_sync(observer)) if "flood" in t]) == len(accepted)
    finally:
        await server.stop()


async def test_30_connections_from_one_address_are_capped_at_16() -> None:
    server = await start_server(**PUBLIC)
    try:
        clients = [
            await TextClient.open(server.tcp_port, local_addr="127.0.0.8", greet=False)
            for _ in range(30)
        ]
        first = [await c.line() for c in clients]
        welcomed = [line for line in first if line.startswith("*** Welcome")]
        refused = [line for line in first if line.startswith("!! too many connections")]
        assert len(welcomed) == 16 and len(refused) == 14
        for client, line in zip(clients, first, strict=True):
            if line.startswith("!!"):
                assert await client.closed()
        # Other addresses are not affected, on either interface.
        await TextClient.open(server.tcp_port, local_addr="127.0.0.9")
        await ws_from(server.http_port, "127.0.0.9")
        # The same cap on WebSocket: an error, then goodbye.
        over = await ws_from(server.http_port, "127.0.0.8", welcome=False)
        error = await over.recv()
        assert error["type"] == "error" and error["code"] == "too_many_connections"
        assert (await over.recv())["type"] == "bye"
    finally:
        await server.stop()


async def test_new_connections_per_address_per_window_are_capped() -> None:
    server = await start_server(**{**PUBLIC, "new_conns_per_address": 5})
    try:
        for _ in range(5):
            client = await TextClient.open(server.tcp_port, local_addr="127.0.0.10")
            await client.close()
        late = await TextClient.open(server.tcp_port, local_addr="127.0.0.10", greet=False)
        assert (await late.line()) == (
            "!! too many new connections from your network (at most 5 in 10 minutes); "
            "try again in 10 minutes"
        )
        assert (await late.line()).startswith("-- ")  # the help lines, meanwhile
        await TextClient.open(server.tcp_port, local_addr="127.0.0.11")
    finally:
        await server.stop()


async def test_closing_a_connection_makes_room_for_another() -> None:
    server = await start_server(**{**PUBLIC, "max_conns_per_address": 2})
    try:
        first = await TextClient.open(server.tcp_port, local_addr="127.0.0.12")
        await TextClient.open(server.tcp_port, local_addr="127.0.0.12")
        third = await TextClient.open(server.tcp_port, local_addr="127.0.0.12", greet=False)
        assert (await third.line()).startswith("!! too many connections")
        await first.send("/quit")
        assert await first.closed()
        await eventually(lambda: len(server.peers) == 1)  # counted once the server saw it
        await TextClient.open(server.tcp_port, local_addr="127.0.0.12")
    finally:
        await server.stop()


async def test_welcome_tells_newcomers_their_own_budget() -> None:
    server = await start_server(**PUBLIC, probation_seconds=DEFAULTS.probation_seconds)
    try:
        limits = (await WsClient.open(server.http_port)).welcome["limits"]
        share = DEFAULTS.probation_share
        assert limits["msg_rate"] == DEFAULTS.msg_rate * share
        assert limits["msg_burst"] == DEFAULTS.msg_burst * share
    finally:
        await server.stop()


async def refused_requests(client: WsClient, count: int) -> list[str]:
    """Send `count` requests that are mistakes at once (not in the room, too long, a command
    that does not parse); the error code each got, in order."""
    mistakes = [
        {"type": "say", "room": "nowhere", "text": "hello?"},
        {"type": "say", "room": "lobby", "text": "x" * (DEFAULTS.max_text + 1)},
        {"type": "say", "room": "lobby", "text": "/mute"},
    ]
    for n in range(count):
        await client.send({**mistakes[n % len(mistakes)], "ref": f"e{n}"})
    return [(await client.expect("error", ref=f"e{n}"))["code"] for n in range(count)]


async def test_refusals_cost_no_budget_and_are_no_flood() -> None:
    server = await start_server(**PUBLIC, probation_seconds=0)
    try:
        person = await WsClient.open(server.http_port)
        codes = await refused_requests(person, 3 * int(DEFAULTS.msg_burst))
        assert "rate_limited" not in codes and "muted" not in codes
        # The whole budget is still there: a burst of corrected messages all go out.
        for n in range(int(DEFAULTS.msg_burst)):
            await person.send({"type": "say", "room": "lobby", "text": f"ok {n}", "ref": f"k{n}"})
        for n in range(int(DEFAULTS.msg_burst)):
            assert (await person.expect("message", ref=f"k{n}"))["text"] == f"ok {n}"
        frames = await ws_sync(person)
        assert not [f for f in frames if f["type"] in ("error", "notice")], frames
    finally:
        await server.stop()


async def test_probation_is_in_welcome_limits() -> None:
    server = await start_server(**PUBLIC, probation_seconds=DEFAULTS.probation_seconds)
    try:
        limits = (await WsClient.open(server.http_port)).welcome["limits"]
        assert 0 < limits["probation_seconds"] <= DEFAULTS.probation_seconds
    finally:
        await server.stop()
    server = await start_server(**PUBLIC, probation_seconds=0)
    try:
        limits = (await WsClient.open(server.http_port)).welcome["limits"]
        assert limits["probation_seconds"] == 0
        assert (limits["msg_rate"], limits["msg_burst"]) == (DEFAULTS.msg_rate, DEFAULTS.msg_burst)
    finally:
        await server.stop()
