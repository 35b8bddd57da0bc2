"""Fair to shared networks (issue 12, item 4): a school, an office or a carrier's NAT puts
hundreds of people behind one address. The contract's defaults (16 at once, 32 new per
10 minutes, bans covering the address) are for the public; a deployment for such an
audience raises the limits and sets `--ban-scope person` (docs/moderation.md), and then
they can all use the service and a moderator stops one troll without stopping the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ..helpers import WsClient, start_server
from ..mod_helpers import expect_kind, staff_ws, write_tokens

PEOPLE = 300
SCHOOL = "127.0.0.9"  # everyone below connects from this one address
BATCH = 25  # connections opened at once


async def _crowd(port: int) -> list[WsClient]:
    crowd: list[WsClient] = []
    for start in range(0, PEOPLE, BATCH):
        crowd += await asyncio.gather(
            *(
                WsClient.open(port, path=f"/ws?client=pupil-{n:04d}-7c1e9a3d", local_addr=SCHOOL)
                for n in range(start, min(start + BATCH, PEOPLE))
            )
        )
    return crowd


async def _everyone_says(crowd: list[WsClient], what: str, watcher: WsClient) -> None:
    """Each of `crowd` says one line; `watcher` hears every one of them."""
    await asyncio.gather(
        *(
            c.send({"type": "say", "room": "lobby", "text": f"{what} {i}"})
            for i, c in enumerate(crowd)
        )
    )
    expected = {f"{what} {i}" for i in range(len(crowd))}
    heard: set[str] = set()
    for _ in range(20 * PEOPLE):
        if heard >= expected:
            break
        frame = await watcher.expect("message")
        heard.add(frame["text"])
    assert heard >= expected, sorted(expected - heard)[:5]


async def test_300_people_behind_one_address_talk_and_one_ban_stops_only_the_troll(
    tmp_path: Path,
) -> None:
    server = await start_server(
        tokens_file=write_tokens(tmp_path),
        max_conns_per_address=1000,  # what docs/moderation.md suggests for a school
        new_conns_per_address=1500,
        ban_scope="person",
        msg_rate=5.0,  # raised so that each says two lines at once; still a budget
        msg_burst=10.0,
    )
    try:
        mod = await staff_ws(server.http_port, address="127.0.0.10")
        async with asyncio.timeout(60):  # a whole class connects within a minute
            crowd = await _crowd(server.http_port)
        assert len(server.peers) == PEOPLE + 1
        await _everyone_says(crowd, "hello from", mod)

        troll, others = crowd[0], crowd[1:]
        await mod.request({"type": "ban", "uid": troll.uid, "minutes": 30}, "notice")
        told = await expect_kind(troll, "banned")
        assert "30 minutes" in told["text"] and told["resources"]
        assert (await troll.expect("bye"))["reason"] == "banned"

        await _everyone_says(others, "still here", mod)
        again = await WsClient.open(
            server.http_port,
            path="/ws?client=pupil-0000-7c1e9a3d",
            welcome=False,
            local_addr=SCHOOL,
        )
        refused = await again.recv()
        assert refused["code"] == "banned" and refused["resources"]
        newcomer = await WsClient.open(server.http_port, local_addr=SCHOOL)  # their classmate
        await newcomer.request({"type": "say", "room": "lobby", "text": "me too"}, "message")
    finally:
        await server.stop()


async def test_help_lines_stay_reachable_to_a_muted_person(tmp_path: Path) -> None:
    server = await start_server(tokens_file=write_tokens(tmp_path))
    try:
        mod, person = await staff_ws(server.http_port), await WsClient.open(server.http_port)
        await mod.request({"type": "mute", "uid": person.uid, "minutes": 30}, "notice")
        said = await person.request({"type": "say", "room": "lobby", "text": "hello?"}, "error")
        assert said["code"] == "muted"
        lines = await person.request({"type": "resources", "region": "GB"}, "notice")
        assert lines["kind"] == "resources" and lines["resources"]
        command = await person.request({"type": "say", "text": "/resources"}, "notice")
        assert command["kind"] == "resources" and command["resources"]
    finally:
        await server.stop()
