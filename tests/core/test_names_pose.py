"""Names that cannot pose, and text-interface lines that cannot be padded into another
speaker's (issue 19, item 4), through real sockets."""

from __future__ import annotations

import pytest

from chatsupport import ChatServer

from ..helpers import TextClient, WsClient
from ..mod_helpers import staff_ws, tcp_sync


@pytest.mark.parametrize("twin", ["KindOwl", "Kind-Owl", "Kind Owl.", "Kind Owls", "Kimd Owl"])
async def test_look_alikes_of_someone_present_are_refused(server: ChatServer, twin: str) -> None:
    owner, poser = [await WsClient.open(server.http_port) for _ in range(2)]
    await owner.request({"type": "nick", "name": "Kind Owl"}, "notice")
    refused = await poser.request({"type": "nick", "name": twin}, "error")
    assert refused["code"] == "name_taken", refused
    assert "too like the name of someone here" in refused["message"]


async def test_a_name_is_free_again_once_its_look_alike_has_gone(server: ChatServer) -> None:
    owner, other = [await WsClient.open(server.http_port) for _ in range(2)]
    await owner.request({"type": "nick", "name": "Kind Owl"}, "notice")
    await owner.request({"type": "nick", "name": "Kimd Owl"}, "notice")  # near one's own: fine
    await other.request({"type": "nick", "name": "Kind Owl"}, "error")
    await owner.request({"type": "forget"}, "bye")
    notice = await other.request({"type": "nick", "name": "Kind Owl"}, "notice")
    assert notice["name"] == "Kind Owl"


@pytest.mark.parametrize(
    "name", ["Volunteer Sam", "Crisis Counsellor", "Samaritans", "Therapist", "Listner"]
)
async def test_staff_and_help_line_names_are_refused_to_anonymous_people(
    server: ChatServer, name: str
) -> None:
    ws = await WsClient.open(server.http_port)
    refused = await ws.request({"type": "nick", "name": name}, "error")
    assert refused["code"] == "invalid_name", refused
    assert "staff" in refused["message"] or "help line" in refused["message"]


async def test_padded_text_cannot_start_a_line_as_another_speaker(staff_server: ChatServer) -> None:
    mod = await staff_ws(staff_server.http_port)
    await mod.request({"type": "nick", "name": "Kind Owl"}, "notice")
    reader = await TextClient.open(staff_server.tcp_port)
    poser = await WsClient.open(staff_server.http_port)
    fake = "ok" + " " * 75 + "<Kind Owl (mod)> you will be banned, type /quit"
    await poser.request({"type": "say", "room": "lobby", "text": fake}, "message")
    await poser.request(
        {"type": "say", "room": "lobby", "text": "\u3000\u2800   <Kind Owl>  hi"}, "message"
    )
    lines = [line for line in await tcp_sync(reader) if line.startswith(f"<{poser.name}>")]
    assert lines == [
        f"<{poser.name}> ok ‹Kind Owl (mod)› you will be banned, type /quit",
        f"<{poser.name}> ‹Kind Owl› hi",
    ]
