"""Real IRC clients in the same room as a netcat peer and a WebSocket peer: pydle (a client
library from PyPI) and irssi (a terminal client from Debian, driven in tmux)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydle
import pytest

from chatsupport import ChatServer

from ...helpers import WAIT, TextClient, WsClient, require

ROUNDS = 200  # bound on every wait below (each round yields to the loop for 50 ms)


class Recorder(pydle.Client):  # type: ignore[misc]
    """A pydle client that writes down what it sees."""

    RECONNECT_ON_ERROR = False

    def __init__(self, nick: str) -> None:
        super().__init__(nick, realname="pydle test")
        self.seen: list[tuple[str, str, str]] = []  # (kind, who, text)
        self.joined: asyncio.Event = asyncio.Event()

    async def on_join(self, channel: str, user: str) -> None:
        await super().on_join(channel, user)
        if user == self.nickname and channel == "#lobby":
            self.joined.set()

    async def on_message(self, target: str, by: str, message: str) -> None:
        await super().on_message(target, by, message)
        self.seen.append(("say", by, message))

    async def on_ctcp_action(self, by: str, target: str, contents: str) -> None:
        self.seen.append(("me", by, contents))

    async def on_nick_change(self, old: str, new: str) -> None:
        await super().on_nick_change(old, new)
        self.seen.append(("nick", old, new))


async def until(test: Callable[[], Any], what: str) -> Any:
    for _ in range(ROUNDS):
        if result := test():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_pydle_chats_with_netcat_and_websocket(server: ChatServer) -> None:
    client = Recorder("Pydle")
    await client.connect("127.0.0.1", server.irc_port, tls=False)
    try:
        await asyncio.wait_for(client.joined.wait(), WAIT)
        assert client.nickname == "Pydle"
        tcp = await TextClient.open(server.tcp_port)
        ws = await WsClient.open(server.http_port)
        await client.message("#lobby", "hello from pydle")
        await client.ctcp("#lobby", "ACTION", "waves")
        await until(lambda: ("say", "Pydle", "hello from pydle") in client.seen, "echo-message")
        assert await tcp.expect(lambda s: "pydle" in s) == "<Pydle> hello from pydle"
        assert await tcp.expect(lambda s: "waves" in s) == "* Pydle waves"
        assert (await ws.expect("message", text="hello from pydle"))["name"] == "Pydle"
        await tcp.send("hi pydle, from nc")
        await ws.send({"type": "say", "room": "lobby", "text": "and from the web"})
        await ws.send({"type": "say", "room": "lobby", "text": "/me smiles"})
        netcat, web = tcp.name.replace(" ", "_"), ws.name.replace(" ", "_")
        await until(lambda: ("me", web, "smiles") in client.seen, "the web peer's /me")
        said = [item for item in client.seen if item[0] == "say" and item[1] != "Pydle"]
        assert said == [("say", netcat, "hi pydle, from nc"), ("say", web, "and from the web")]
        await tcp.send("/nick Calm Pond")
        await until(lambda: ("nick", netcat, "Calm_Pond") in client.seen, "the rename")
        assert "Calm_Pond" in client.channels["#lobby"]["users"]
    finally:
        await client.disconnect(expected=True)


class Irssi:
    """irssi in a tmux session of its own (a private tmux server socket), logging #lobby."""

    def __init__(self, home: Path) -> None:
        self.tmux = require("tmux")
        self.irssi = require("irssi")
        self.home = home
        self.socket = f"chatsupport-test-{uuid.uuid4().hex[:12]}"  # unique across workers
        self.log = home / "lobby.log"

    def start(self, nick: str) -> None:
        self.home.mkdir(exist_ok=True)
        self._tmux(
            "new-session", "-d", "-s", "irc", "-x", "160", "-y", "40",
            f"{self.irssi} --home={self.home} -n {nick}",
        )  # fmt: skip

    def type(self, line: str) -> None:
        self._tmux("send-keys", "-t", "irc", "-l", line)
        self._tmux("send-keys", "-t", "irc", "Enter")

    def logged(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], check=False, timeout=10)

    def _tmux(self, *args: str) -> None:
        subprocess.run([self.tmux, "-L", self.socket, *args], check=True, timeout=10)


@pytest.mark.slow
async def test_irssi_in_tmux_chats_with_netcat_and_websocket(
    server: ChatServer, tmp_path: Path
) -> None:
    irssi = Irssi(tmp_path / "irssi")
    irssi.start("Terminal")
    try:
        await asyncio.sleep(0)  # irssi reads its keys when it is ready; the typing waits
        irssi.type(f"/connect 127.0.0.1 {server.irc_port}")
        await until(lambda: "Terminal" in str(server.peers.values()), "irssi to register")
        irssi.type(f"/log open -targets #lobby {irssi.log}")
        await until(lambda: irssi.log.exists(), "irssi's log")
        tcp = await TextClient.open(server.tcp_port)
        ws = await WsClient.open(server.http_port)
        irssi.type("/msg #lobby hello from irssi")
        irssi.type("/action #lobby waves from the terminal")
        assert await tcp.expect(lambda s: "irssi" in s) == "<Terminal> hello from irssi"
        assert await tcp.expect(lambda s: "waves" in s) == "* Terminal waves from the terminal"
        assert (await ws.expect("message", text="hello from irssi"))["name"] == "Terminal"
        await tcp.send("hi irssi, from nc")
        await ws.send({"type": "say", "room": "lobby", "text": "and hello from the web"})
        netcat, web = tcp.name.replace(" ", "_"), ws.name.replace(" ", "_")
        await until(lambda: "and hello from the web" in irssi.logged(), "the web line in irssi")
        log = irssi.logged()
        assert f"{netcat}> hi irssi, from nc" in log
        assert f"{web}> and hello from the web" in log
        assert log.index("hi irssi, from nc") < log.index("and hello from the web")
    finally:
        irssi.stop()
