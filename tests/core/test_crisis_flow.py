"""Crisis support end to end: a message matching the phrase list is delivered as usual, its
author privately gets help lines, moderators and listeners get an alert (CONTRACT §7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatsupport import ChatServer
from chatsupport.core.resources import ResourcesError

from ..helpers import ROOT, TextClient, WsClient, start_server
from ..mod_helpers import (
    LISTENER_TOKEN,
    expect_kind,
    staff_tcp,
    staff_ws,
    tcp_sync,
    ws_sync,
)


@pytest.fixture
def server(staff_server: ChatServer) -> ChatServer:
    """Every test here runs with the staff tokens."""
    return staff_server


async def test_crisis_message_gets_help_privately_and_alerts_staff(server: ChatServer) -> None:
    mod, listener = (
        await staff_ws(server.http_port),
        await staff_tcp(server.tcp_port, LISTENER_TOKEN),
    )
    person, bystander = await WsClient.open(server.http_port), await WsClient.open(server.http_port)
    text = "honestly I just want to die"
    sent = await person.request({"type": "say", "room": "lobby", "text": text}, "message")
    # Delivered as usual ...
    assert (await bystander.expect("message", text=text))["id"] == sent["id"]
    # ... then its author alone is offered help lines.
    notice = await expect_kind(person, "resources")
    assert notice["resources"] and notice.get("region") is None
    assert any(r["region"] == "INT" for r in notice["resources"])
    assert all(r["line"] for r in notice["resources"])
    # Asked which country they are in (the page offers a choice; netcat says /region CODE),
    # with no terminal instructions in the words themselves.
    assert {r["code"] for r in notice["regions"]} >= {"GB", "US"}
    assert "/" not in notice["text"]
    alert = await expect_kind(mod, "crisis", "alert")
    assert alert == {
        "type": "alert",
        "kind": "crisis",
        "room": "lobby",
        "uid": person.uid,
        "name": person.name,
        "text": text,
        "message_id": sent["id"],
    }
    line = await listener.expect(lambda s: s.startswith("*** [alert]"))
    assert line == f"*** [alert] {person.name} in #lobby may need help: {text}"
    assert server.peers[person.uid].crisis is True
    # Nobody else hears of it.
    frames = await ws_sync(bystander)
    assert not [f for f in frames if f["type"] in ("alert", "notice")]


async def test_the_region_is_the_persons_choice(server: ChatServer) -> None:
    person = await WsClient.open(server.http_port)
    chosen = await person.request({"type": "resources", "region": "uk"}, "notice")
    assert chosen["kind"] == "resources" and chosen["region"] == "GB"
    assert chosen["resources"][0]["region"] == "GB"
    assert chosen["resources"][-1]["region"] == "INT"
    await person.request(
        {"type": "say", "room": "lobby", "text": "i want to kill myself"}, "message"
    )
    notice = await expect_kind(person, "resources")
    assert notice["region"] == "GB" and notice["resources"][0]["region"] == "GB"
    # Asking again without a region shows the remembered one.
    again = await person.request({"type": "say", "text": "/resources"}, "notice")
    assert again["region"] == "GB"
    unknown = await person.request({"type": "resources", "region": "Atlantis"}, "notice")
    assert unknown.get("region") is None
    assert "No help lines for 'Atlantis'" in unknown["text"]
    assert {r["region"] for r in unknown["resources"]} == {"INT"}


async def test_crisis_on_the_text_interface(server: ChatServer) -> None:
    mod = await staff_ws(server.http_port)
    person, other = await TextClient.open(server.tcp_port), await TextClient.open(server.tcp_port)
    await person.send("/resources US")
    assert await person.expect(lambda s: s.startswith("-- Help lines")) == (
        "-- Help lines for United States:"
    )
    assert await person.line() == (
        "-- 988 Suicide & Crisis Lifeline: call 988 · text 988 · 24/7 · English, Spanish"
        " · https://988lifeline.org (Call, text or chat)"
    )
    assert (await person.line()).startswith("-- Crisis Text Line: text HOME to 741741 · 24/7")
    await tcp_sync(person)
    await person.send("i keep thinking about suicde")  # misspelt on purpose
    assert await other.expect(lambda s: "suicde" in s) == (
        f"<{person.name}> i keep thinking about suicde"
    )
    lines = await tcp_sync(person)
    assert lines[0].startswith("-- It sounds like things are really hard")
    assert any("988" in line for line in lines[1:])
    alert = await expect_kind(mod, "crisis", "alert")
    assert alert["name"] == person.name and alert["text"] == "i keep thinking about suicde"


@pytest.mark.parametrize(
    "text",
    [
        "this traffic is killing me",
        "I could die laughing at that",
        "kill the process and restart it",
        "dying to see the new film",
        "the suicide squad movie was fun",
    ],
)
async def test_everyday_phrases_raise_nothing(server: ChatServer, text: str) -> None:
    mod = await staff_ws(server.http_port)
    person = await WsClient.open(server.http_port)
    await person.request({"type": "say", "room": "lobby", "text": text}, "message")
    frames = await ws_sync(person)
    alerts = [f for f in await ws_sync(mod) if f["type"] == "alert"]
    assert not [f for f in frames if f["type"] == "notice"]
    assert not alerts


@pytest.mark.parametrize(
    "text",
    ["i wanna end it all", "gonna k1ll myself tonight", "I want to DIE", "thinking of self-harm"],
)
async def test_variants_and_misspellings_match(server: ChatServer, text: str) -> None:
    person = await WsClient.open(server.http_port)
    await person.request({"type": "say", "room": "lobby", "text": text}, "message")
    await expect_kind(person, "resources")


async def test_one_notice_and_alert_per_person_per_while(server: ChatServer) -> None:
    mod = await staff_ws(server.http_port)
    person = await WsClient.open(server.http_port)
    for text in ("i want to die", "i really want to die"):
        await person.request({"type": "say", "room": "lobby", "text": text}, "message")
    frames = await ws_sync(person)
    assert len([f for f in frames if f["type"] == "notice"]) == 1
    assert len([f for f in await ws_sync(mod) if f["type"] == "alert"]) == 1


async def test_operator_files_replace_the_shipped_ones(tmp_path: Path) -> None:
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("# ours\nfeeling hopeless\n")
    resources = tmp_path / "resources.toml"
    resources.write_text(
        'version = 2\n[[resource]]\nregion = "INT"\nname = "Our Line"\n'
        'contacts = [{ kind = "call", value = "0800000", label = "0800 000" }]\n'
    )
    server = await start_server(crisis_phrases_file=str(phrases), resources_file=str(resources))
    try:
        person = await WsClient.open(server.http_port)
        await person.request({"type": "say", "room": "lobby", "text": "want to die"}, "message")
        assert not [f for f in await ws_sync(person) if f["type"] == "notice"]
        await person.request(
            {"type": "say", "room": "lobby", "text": "Feeling HOPELESS"}, "message"
        )
        notice = await expect_kind(person, "resources")
        assert [r["line"] for r in notice["resources"]] == ["Our Line: call 0800 000"]
        (contact,) = notice["resources"][0]["contacts"]
        assert (contact["kind"], contact["value"], contact["label"]) == (
            "call",
            "0800000",
            "0800 000",
        )
    finally:
        await server.stop()


async def test_a_broken_resources_file_stops_the_start(tmp_path: Path) -> None:
    broken = tmp_path / "resources.toml"
    broken.write_text("version = 2\n")
    with pytest.raises(ResourcesError, match="no \\[\\[resource\\]\\]"):
        await start_server(resources_file=str(broken))


def _serve(*flags: str) -> subprocess.CompletedProcess[str]:
    """`chatsupport serve` with a file that must stop it before it listens."""
    command = ["chatsupport", "serve", "--tcp-port", "0", "--http-port", "0", "--irc-port", "0"]
    command += flags
    return subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        timeout=30,
        check=False,
    )


def test_the_command_line_names_a_broken_phrases_file(tmp_path: Path) -> None:
    empty = tmp_path / "phrases.txt"
    empty.write_text("# nothing here\n")
    done = _serve("--crisis-phrases-file", str(empty))
    assert done.returncode == 2
    assert (
        done.stderr.startswith("chatsupport: bad configuration:") and "phrases.txt" in done.stderr
    )


def test_the_command_line_names_the_entry_of_a_broken_resources_file(tmp_path: Path) -> None:
    """An operator's help line that glues two numbers together never reaches anyone."""
    mine = tmp_path / "mine.toml"
    mine.write_text(
        'version = 2\n[[resource]]\nregion = "INT"\nname = "Directory"\n'
        'contacts = [{ kind = "web", value = "https://example.org" }]\n'
        '[[resource]]\nregion = "GB"\nname = "Emergency"\n'
        'contacts = [{ kind = "call", value = "999 or 112" }]\n'
    )
    done = _serve("--resources-file", str(mine))
    assert done.returncode == 2
    assert done.stderr.startswith("chatsupport: bad configuration:"), done.stderr
    assert f"{mine}: resource 2 (Emergency): contact 1: value '999 or 112'" in done.stderr
    assert "listening on" not in done.stdout


async def test_crisis_in_a_one_to_one_chat_stays_private(server: ChatServer) -> None:
    mod = await staff_ws(server.http_port)
    own_listener = await staff_ws(server.http_port, LISTENER_TOKEN)
    seeker = await WsClient.open(server.http_port)
    await seeker.request({"type": "talk"}, "queue")
    await own_listener.request({"type": "listen", "on": True}, "notice")
    room = (await seeker.expect("matched"))["room"]
    await own_listener.expect("matched", room=room)
    other_listener = await staff_ws(server.http_port, LISTENER_TOKEN)
    text = "i dont want to live anymore"
    sent = await seeker.request({"type": "say", "room": room, "text": text}, "message")
    await expect_kind(seeker, "resources")
    alert = await expect_kind(own_listener, "crisis", "alert")
    assert alert["text"] == text and alert["message_id"] == sent["id"]
    redacted = await expect_kind(mod, "crisis", "alert")
    assert redacted["room"] == room and text not in redacted["text"]
    assert not [f for f in await ws_sync(other_listener) if f["type"] == "alert"]
