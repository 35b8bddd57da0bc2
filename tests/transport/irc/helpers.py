"""A socket-free IRC client around IrcConnection: lines in, parsed lines and actions out."""

from __future__ import annotations

from typing import Any

from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.transport.ircproto.actions import IrcSettings, ToCore
from chatsupport.transport.ircproto.connection import IrcConnection
from chatsupport.transport.ircproto.message import Line, parse
from chatsupport.transport.ircproto.render import IrcCodec

NOW = 1_700_000_000.0
CODEC = IrcCodec("chatsupport")


def message(
    id: int, text: str = "hi", *, name: str = "Quiet Otter", uid: str = "u2", **kw: Any
) -> ev.Message:
    fields: dict[str, Any] = {"room": "lobby", "role": None, "kind": "say", "ts": NOW + id}
    fields.update(kw)
    return ev.Message(id=id, uid=uid, name=name, text=text, **fields)


class Client:
    def __init__(self, **settings: Any) -> None:
        self.conn = IrcConnection(IrcSettings(**settings), CODEC, clock=lambda: NOW)
        self.lines: list[Line] = []
        self.actions: list[object] = []
        self.raw: list[bytes] = []

    def send(self, *lines: str | bytes) -> Client:
        for line in lines:
            data = line if isinstance(line, bytes) else line.encode()
            self.conn.receive_data(data + b"\r\n")
        return self.collect()

    def event(self, *events: ev.Event) -> Client:
        for event in events:
            self.conn.event(event)
        return self.collect()

    def collect(self) -> Client:
        for out in self.conn.take():
            if isinstance(out, bytes):
                self.raw.append(out)
                for text in out.decode().split("\r\n"):
                    if text:
                        self.lines.append(parse(text))
            else:
                self.actions.append(out)
        return self

    def take_lines(self) -> list[Line]:
        lines, self.lines = self.lines, []
        return lines

    def commands(self) -> list[str]:
        return [line.command for line in self.take_lines()]

    def take_actions(self) -> list[object]:
        actions, self.actions = self.actions, []
        return actions

    def requests(self) -> list[rq.Request]:
        return [a.request for a in self.take_actions() if isinstance(a, ToCore)]


def welcome(name: str = "Quiet Otter", uid: str = "u1", session: str = "tok") -> ev.Welcome:
    return ev.Welcome(session=session, uid=uid, name=name, room="lobby", rooms=["lobby"], limits={})


def joined(room: str = "lobby", *members: ev.Member) -> ev.Joined:
    listed = list(members) or [ev.Member("u1", "Quiet Otter")]
    return ev.Joined(room=room, count=len(listed), members=listed)


def registered(nick: str = "Quiet_Otter", caps: str = "", **settings: Any) -> Client:
    """A client through registration (with `caps` requested), in #lobby, lines cleared."""
    client = Client(**settings)
    if caps:
        client.send("CAP LS 302", f"CAP REQ :{caps}")
    client.send(f"NICK {nick}", "USER u 0 * :Real Name")
    if caps:
        client.send("CAP END")
    client.event(welcome(), joined())
    for request in client.requests():
        if isinstance(request, rq.Nick):
            client.event(ev.Notice(kind="nick", text="", name=request.name, ref=request.ref))
    client.take_lines()
    client.take_actions()
    return client
