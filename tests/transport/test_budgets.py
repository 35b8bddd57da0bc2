"""Budgets that measure arrival fairly and cover everything (issue 19, item 5)."""

from __future__ import annotations

import asyncio
import signal

from ..helpers import ServerProcess, TextClient, WsClient, start_server
from ..mod_helpers import ws_sync

RATE = 5.0  # the sender's budget: 5 messages per second, bursts of 5


async def test_a_node_stopped_by_its_host_does_not_charge_the_backlog_as_a_flood() -> None:
    """A sender well under its budget keeps sending while the node is stopped (SIGSTOP);
    what the node then reads in a heap arrived at that pace and is all accepted."""
    node = ServerProcess(
        "--http-port",
        "0",
        "--tcp-port",
        "0",
        "--msg-rate",
        str(RATE),
        "--msg-burst",
        str(RATE),
        "--probation-seconds",
        "0",
        "--flood-strikes",
        "3",
    ).start()
    assert node.proc is not None
    try:
        sender = await WsClient.open(node.port("http"))
        sent = 0

        async def say_for(seconds: float) -> None:
            nonlocal sent
            for _ in range(round(seconds * 2)):  # 2 a second: well under 5
                sent += 1
                await sender.send({"type": "say", "room": "lobby", "text": f"n{sent}"})
                await asyncio.sleep(0.5)

        await say_for(1.0)
        node.proc.send_signal(signal.SIGSTOP)
        try:
            await say_for(5.0)  # ten messages wait in the kernel meanwhile
        finally:
            node.proc.send_signal(signal.SIGCONT)
        await say_for(1.0)
        frames = await ws_sync(sender)
        errors = [f for f in frames if f["type"] == "error"]
        assert errors == [], errors[:3]
        echoed = [f["text"] for f in frames if f["type"] == "message"]
        assert echoed == [f"n{n}" for n in range(1, sent + 1)]
        assert not [f for f in frames if f["type"] == "notice" and f.get("kind") == "mute"]
    finally:
        node.stop()


async def test_a_crowded_room_is_listed_a_page_at_a_time_on_both_interfaces() -> None:
    server = await start_server(page_size=3)
    try:
        ws = [await WsClient.open(server.http_port) for _ in range(6)]
        tcp = await TextClient.open(server.tcp_port)
        first = await ws[0].request({"type": "who", "room": "lobby"}, "who")
        assert len(first["members"]) == 3 and first["count"] == 7 and first["more"] is True
        assert "page" not in first  # the first page looks as it always did, with a count
        last = await ws[0].request({"type": "who", "room": "lobby", "page": 3}, "who")
        assert len(last["members"]) == 1 and last["page"] == 3 and "more" not in last
        everyone = {
            m["uid"]
            for p in (1, 2, 3)
            for m in (await ws[1].request({"type": "who", "room": "lobby", "page": p}, "who"))[
                "members"
            ]
        }
        assert everyone >= {c.uid for c in ws}
        bad = await ws[0].request({"type": "who", "room": "lobby", "page": 0}, "error")
        assert bad["code"] == "bad_request"
        await tcp.send("/who lobby 2")
        line = await tcp.expect(lambda s: s.startswith("-- in #lobby"))
        assert line.startswith("-- in #lobby (7): ") and line.endswith("(/who lobby 3 for more)")
        rooms = await ws[0].request({"type": "rooms"}, "rooms")
        assert rooms["rooms"] == [{"name": "lobby", "count": 7}] and rooms["count"] == 1
    finally:
        await server.stop()


async def test_every_read_costs_something_and_help_lines_never_do() -> None:
    """With the public budget (1 a second, bursts of 8), asking `who` or `rooms` in a loop
    is slowed down; help lines and the liveness ping are never refused."""
    server = await start_server(msg_rate=1.0, msg_burst=8.0, page_size=2)
    try:
        asker = await WsClient.open(server.http_port)
        for _ in range(3):
            await WsClient.open(server.http_port)
        for n in range(40):
            await asker.send({"type": "who" if n % 2 else "rooms", "room": "lobby", "ref": f"q{n}"})
        answers = {}
        for _ in range(200):
            frame = await asker.recv()
            if str(frame.get("ref", "")).startswith("q"):
                answers[frame["ref"]] = frame.get("code", frame["type"])
            if len(answers) == 40:
                break
        assert answers["q0"] == "rooms" and answers["q1"] == "who"
        assert list(answers.values()).count("rate_limited") >= 20
        for _ in range(5):
            help_lines = await asker.request({"type": "resources"}, "notice")
            assert help_lines["resources"]
            await asker.request({"type": "ping"}, "pong")
    finally:
        await server.stop()
