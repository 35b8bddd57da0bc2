"""Operations (issue 19, item 6): pathological JSON is a `bad_request`, an outage is one log
line not one a second, running out of descriptors is said once and recovered from,
sign-in failure records are pruned, announcements leave one-to-one chats alone."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chatsupport import ChatServer
from chatsupport.core.roles import Roles

from .helpers import ROOT, WAIT, TextClient, WsClient, eventually, start_server
from .mod_helpers import staff_ws
from .redis_server import RedisServer

NESTED = [
    b"[" * 1024 + b"]" * 1024,  # 2 KB of nested arrays
    b'{"a":' * 400 + b"1" + b"}" * 400,  # nested objects
    b'{"type": "say", "text": "hi", "x": ' + b'[{"a":' * 600 + b"1" + b"}]" * 600 + b"}",
    b'{"type": "ping", "ref": ' + b"[" * 3000 + b"]" * 3000 + b"}",  # where the ref goes
]


@pytest.mark.parametrize("frame", NESTED, ids=["arrays", "objects", "inside", "as-ref"])
async def test_deeply_nested_json_is_a_bad_request_and_the_connection_goes_on(
    server: ChatServer, frame: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    client = await WsClient.open(server.http_port)
    await client.ws.send(frame.decode())
    refused = await client.expect("error")
    assert refused["code"] == "bad_request"
    cut = frame[: len(frame) - 3]  # the same, cut short: not JSON at all
    await client.ws.send(cut.decode())
    assert (await client.expect("error"))["code"] == "bad_json"
    await client.request({"type": "ping"}, "pong")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_outage_is_one_log_line_each_way(caplog: pytest.LogCaptureFixture) -> None:
    redis = RedisServer().start()
    server = await start_server(broker=redis.url())
    try:
        client = await WsClient.open(server.http_port)
        caplog.set_level(logging.INFO)
        redis.stop()
        assert await eventually(lambda: not server.chat.broker.healthy, 10.0)  # type: ignore[union-attr]
        for _ in range(4):  # several ticks while Redis is away
            await client.request({"type": "ping"}, "pong")
            await asyncio.sleep(1.0)
        redis.start()
        assert await eventually(lambda: server.chat.broker.healthy, 15.0)  # type: ignore[union-attr]
        for _ in range(2):
            await asyncio.sleep(1.0)
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("chatsupport")]
        housekeeping = [line for line in lines if "housekeeping" in line]
        assert len(housekeeping) <= 2, housekeeping  # waits, then works again: at most once each
        assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"
        assert sum("redis unreachable" in line for line in lines) == 1
    finally:
        await server.stop()
        redis.stop()


def _serve_with_few_descriptors(limit: int) -> subprocess.Popen[str]:
    code = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))\n"
        "from chatsupport.cli import main\n"
        "sys.exit(main(['serve', '--host', '127.0.0.1', '--tcp-port', '0', '--http-port', '0',"
        " '--irc-port', '0',"
        " '--max-conns-per-address', '1000', '--new-conns-per-address', '100000']))\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )


def _descriptors_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def test_running_out_of_descriptors_is_said_once_and_recovered_from() -> None:
    proc = _serve_with_few_descriptors(64)
    held: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        tcp = int(proc.stdout.readline().rsplit(":", 1)[1])
        proc.stdout.readline()
        for _ in range(100):  # more than the server can hold
            held.append(socket.create_connection(("127.0.0.1", tcp), timeout=WAIT))
        assert await eventually(lambda: _descriptors_of(proc.pid) >= 60, 10.0)
        for _ in range(3):  # a few ticks at the limit, more connections still knocking
            await asyncio.sleep(1.0)
            with pytest.raises(OSError):  # refused, reset or never answered
                extra = socket.create_connection(("127.0.0.1", tcp), timeout=1.0)
                held.append(extra)
                extra.recv(1)
                raise OSError("no answer")
        for sock in held:
            sock.close()
        held.clear()
        assert await eventually(lambda: _descriptors_of(proc.pid) < 30, 10.0)
        client = await TextClient.open(tcp)  # once they are free: welcome again
        await client.close()
        await asyncio.sleep(1.5)  # a tick to notice
    finally:
        for sock in held:
            sock.close()
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    said = [line for line in err.splitlines() if "file descriptors" in line]
    assert len(said) == 2, said
    assert "out of file descriptors (limit 64, hard limit 64)" in said[0]
    assert "free again" in said[1]


async def test_sign_in_failures_are_forgotten_after_their_window(server: ChatServer) -> None:
    assert server.chat is not None
    roles = server.chat.feature(Roles)
    client = await WsClient.open(server.http_port)
    await client.request({"type": "auth", "token": "wrong"}, "error")
    assert roles.failures._events  # one record
    roles.failures.window = 0.0  # the window is over for it now
    await eventually(lambda: not roles.failures._events, 5.0)
    assert not roles.failures._events  # pruned on the tick


async def test_announcements_leave_one_to_one_chats_alone_unless_named(
    staff_server: ChatServer,
) -> None:
    mod = await staff_ws(staff_server.http_port)
    seeker = await WsClient.open(staff_server.http_port)
    private = "dm-test"
    assert staff_server.chat is not None
    await staff_server.chat.enter(staff_server.chat.sessions[seeker.uid], private)
    await seeker.request({"type": "join", "room": "open-room"}, "joined")
    done = await mod.request({"type": "announce", "text": "maintenance at noon"}, "notice")
    assert "room(s)" in done["text"]
    heard = await seeker.expect("message", text="maintenance at noon")
    assert heard["room"] != private
    await mod.request({"type": "announce", "text": "to you two", "room": private}, "notice")
    addressed = await seeker.expect("message", text="to you two")
    assert addressed["room"] == private
    await seeker.request({"type": "ping"}, "pong")
    everywhere = [f for f in seeker.backlog if f.get("text") == "maintenance at noon"]
    assert private not in [f["room"] for f in everywhere]
