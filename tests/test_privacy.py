"""Privacy audit: after a full scenario against a real server process logging at DEBUG,
nothing it printed, served on /metrics or wrote to disk holds a client address, a message
text or a token (CONTRACT §7)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from websockets.asyncio.client import connect

from .helpers import WAIT, ServerProcess, TextClient, WsClient
from .ircraw import IrcClient
from .mod_helpers import (
    LISTENER_TOKEN,
    MOD_TOKEN,
    expect_kind,
    staff_ws,
    write_tokens,
    ws_from,
    ws_sync,
)

ADDRESSES = ["127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"]
FORWARDED = "203.0.113.77"  # sent by an untrusted client as X-Forwarded-For
TEXTS = {
    "secret": "my secret is pineapple-42",
    "troll": "you are all idiots zebra-17",
    "crisis": "i want to die tonight walrus",
    "reason": "reason-narwhal-9",
    "tcp": "quiet words over telnet okapi-3",
    "bad_json": "secret-in-bad-json-31",
    "probe": "/secret-path-88",
    "wrong_token": "wrong-token-quokka-5",
    "irc": "words over irc capybara-8",
    "irc_bad": "secret-in-bad-utf8-12",
    "irc_quit": "quit-reason-tapir-4",
    "irc_real_name": "Real Name Axolotl-6",
}


def snapshot(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


async def http_get(port: int, path: str, address: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    return data.decode(errors="replace")


async def irc_scenario(irc: int, tcp: TextClient, secrets: list[str]) -> None:
    """An IRC client: a real name, a wrong server password, words, bad bytes, a quit reason."""
    client = await IrcClient.connect(irc, register=False, local_addr=ADDRESSES[1])
    await client.send_lines(
        f"PASS {TEXTS['wrong_token']}", "NICK Birder", f"USER u 0 * :{TEXTS['irc_real_name']}"
    )
    while (line := await client.read()).command != "366":
        if "resume:" in line.params[-1]:
            secrets.append(line.params[-1].split("resume:")[1].split()[0])
    await client.send_lines(f"PRIVMSG #lobby :{TEXTS['irc']}")
    await tcp.expect(lambda s: TEXTS["irc"] in s)
    await client.send_lines(f"PRIVMSG #lobby :{TEXTS['irc_bad']}".encode() + b"\xff")
    await client.expect("FAIL")
    await client.send_lines(f"QUIT :{TEXTS['irc_quit']}")
    assert await client.closed()


async def scenario(http: int, tcp: int, irc: int, metrics: int, secrets: list[str]) -> str:
    """Chat, auth, crisis, report, ban, refused reconnects, forget, odd input; /metrics."""
    mod = await staff_ws(http, address=ADDRESSES[0])
    person = await ws_from(http, ADDRESSES[1])
    troll = await TextClient.open(tcp, local_addr=ADDRESSES[2])
    listener = await TextClient.open(tcp, local_addr=ADDRESSES[3])
    secrets += [mod.welcome["session"], person.welcome["session"]]
    await listener.send(f"/auth {LISTENER_TOKEN}")
    await listener.expect(lambda s: s.startswith("-- you are signed in"))
    await person.request({"type": "auth", "token": TEXTS["wrong_token"]}, "error")

    await person.request({"type": "say", "room": "lobby", "text": TEXTS["secret"]}, "message")
    await troll.send(TEXTS["troll"])
    troll_message = await person.expect("message", text=TEXTS["troll"])
    await listener.send(TEXTS["tcp"])
    await person.expect("message", text=TEXTS["tcp"])
    await irc_scenario(irc, listener, secrets)
    await person.request({"type": "say", "room": "lobby", "text": TEXTS["crisis"]}, "message")
    await expect_kind(person, "resources")
    await expect_kind(mod, "crisis", "alert")
    await person.request(
        {"type": "report", "id": troll_message["id"], "reason": TEXTS["reason"]}, "notice"
    )
    await mod.expect("report")
    await mod.request({"type": "reports"}, "notice")

    ban = {"type": "ban", "uid": troll_message["uid"], "minutes": 5, "scope": "address"}
    await mod.request(ban, "notice")
    assert await troll.closed()
    again = await TextClient.open(tcp, local_addr=ADDRESSES[2], greet=False)
    assert (await again.line()).startswith("!! a moderator closed the chat to your network")
    refused = await ws_from(http, ADDRESSES[2], welcome=False)
    assert (await refused.recv())["code"] == "banned"

    await person.send(TEXTS["bad_json"] + "{")
    await person.expect("error")
    session = person.welcome["session"]
    await person.request({"type": "forget"}, "bye")
    back = await ws_from(http, ADDRESSES[1])
    secrets.append(back.welcome["session"])
    resumed = await back.request({"type": "resume", "session": session, "last": {}}, "resumed")
    assert resumed["complete"] is False

    forwarded = await connect(
        f"ws://127.0.0.1:{http}/ws",
        additional_headers={"X-Forwarded-For": FORWARDED},
        local_addr=(ADDRESSES[3], 0),
        open_timeout=WAIT,
    )
    client = WsClient(forwarded)
    client.welcome = await client.expect("welcome")
    secrets.append(client.welcome["session"])
    await ws_sync(client)

    probe = await TextClient.open(tcp, local_addr=ADDRESSES[0], greet=False)
    await probe.send(f"GET {TEXTS['probe']} HTTP/1.1\r\n\r\n".encode())
    assert await probe.closed()
    await http_get(http, TEXTS["probe"], ADDRESSES[0])
    assert " 404 " in await http_get(http, "/metrics", ADDRESSES[0])  # never on the public port
    return await http_get(metrics, "/metrics", ADDRESSES[0])


async def test_a_full_scenario_leaves_no_trace(tmp_path: Path) -> None:
    workdir, tmpdir = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    tmpdir.mkdir()
    tokens = write_tokens(tmp_path)
    before = snapshot(tmp_path)
    server = ServerProcess(
        "--tcp-port",
        "0",
        "--http-port",
        "0",
        "--log-level",
        "DEBUG",
        "--tokens-file",
        tokens,
        "--msg-rate",
        "50",
        "--msg-burst",
        "50",
        "--metrics-port",
        "0",
        env={"TMPDIR": str(tmpdir)},
        cwd=str(workdir),
    ).start()
    secrets = [MOD_TOKEN, LISTENER_TOKEN]
    try:
        http, tcp, irc, metrics_port = (server.port(s) for s in ("http", "tcp", "irc", "metrics"))
        metrics = await scenario(http, tcp, irc, metrics_port, secrets)
    finally:
        out, err = server.stop()
    written = {
        p: p.read_text(errors="replace")
        for p, v in snapshot(tmp_path).items()
        if before.get(p) != v
    }
    assert "peer connected uid=" in err  # the logs are really there, at DEBUG
    assert "chatsupport_events" in metrics and "reports" in metrics
    assert "chatsupport_rooms 1.0" in metrics  # #lobby; staff channels are not rooms
    needles = [*ADDRESSES, FORWARDED, *TEXTS.values(), *secrets]
    places = {"stdout": out, "stderr": err, "/metrics": metrics}
    places |= {str(path): text for path, text in written.items()}
    found = [
        (needle, where) for needle in needles for where, text in places.items() if needle in text
    ]
    assert found == []
    assert written == {}, f"the server wrote files: {sorted(map(str, written))}"
    assert os.listdir(workdir) == []
