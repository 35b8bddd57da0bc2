"""Registration without sockets: NICK/USER, CAP negotiation, SASL PLAIN, PASS, the burst."""

from __future__ import annotations

import base64

from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.transport.ircproto.actions import Close, Open, Resume

from .helpers import Client, joined, message, registered, welcome


def plain(token: str, user: str = "mod") -> str:
    return base64.b64encode(f"\0{user}\0{token}".encode()).decode()


def test_nick_user_opens_then_asks_for_the_nick() -> None:
    client = Client().send("NICK Bob", "USER bob 0 * :Bob Real")
    assert client.take_actions() == [Open(None)]
    client.event(welcome(), joined())
    assert client.requests() == [rq.Nick(name="Bob", ref="REG:")]
    assert client.lines == []  # nothing before the burst
    client.event(ev.Notice(kind="nick", text="", name="Bob", ref="REG:"))
    lines = client.take_lines()
    assert [line.command for line in lines[:5]] == ["001", "002", "003", "004", "005"]
    assert lines[0].params[0] == "Bob"
    isupport = " ".join(" ".join(line.params) for line in lines if line.command == "005")
    for token in ["CASEMAPPING=ascii", "CHANTYPES=#", "NICKLEN=25", "CHANNELLEN=33"]:
        assert token in isupport
    assert "NETWORK=ChatSupport" in isupport and "TOPICLEN=0" in isupport
    commands = [line.command for line in lines]
    assert commands.index("376") < commands.index("JOIN")
    join = lines[commands.index("JOIN")]
    assert join.source == "Bob!anon@chatsupport/anon" and join.params == ["#lobby"]
    names = lines[commands.index("353")]
    assert names.params[-1] == "Bob"  # the joined list had the old name: own uid is Bob now
    resume = [line for line in lines if line.command == "NOTICE" and "resume:tok" in line.params[1]]
    assert resume and resume[0].source == "ChatSupport!service@chatsupport"


def test_nick_taken_keeps_the_anonymous_name_and_says_so() -> None:
    client = Client().send("NICK Bob", "USER bob 0 * :x").event(welcome(), joined())
    client.requests()
    client.event(ev.Error(code="name_taken", message="Bob is taken", ref="REG:"))
    lines = client.take_lines()
    assert lines[0].command == "001" and lines[0].params[0] == "Quiet_Otter"
    taken = next(line for line in lines if line.command == "433")
    assert taken.params[:2] == ["Quiet_Otter", "Bob"]
    told = [line.params[1] for line in lines if line.command == "NOTICE"]
    assert any("You are Quiet_Otter instead" in text for text in told)


def test_reserved_or_invalid_nick_is_432() -> None:
    client = Client().send("NICK Admin", "USER a 0 * :x").event(welcome(), joined())
    client.requests()
    client.event(ev.Error(code="invalid_name", message="that name is reserved", ref="REG:"))
    assert "432" in client.commands()


def test_same_nick_as_given_needs_no_request() -> None:
    client = Client().send("NICK Quiet_Otter", "USER a 0 * :x").event(welcome())
    assert client.requests() == []
    assert client.commands()[0] == "001"


def test_commands_before_registration_are_451() -> None:
    client = Client().send("JOIN #lobby", "PRIVMSG #lobby :hi")
    assert [line.command for line in client.take_lines()] == ["451", "451"]
    assert client.take_actions() == []


def test_cap_negotiation_holds_registration_until_cap_end() -> None:
    client = Client().send("CAP LS 302", "NICK Bob", "USER b 0 * :x")
    ls = client.take_lines()[0]
    assert (ls.command, ls.params[:2]) == ("CAP", ["*", "LS"])
    offered = ls.params[-1].split()
    assert "sasl=PLAIN" in offered and "draft/chathistory" in offered and "batch" in offered
    assert client.take_actions() == []  # negotiating: not yet
    client.send("CAP REQ :server-time echo-message")
    ack = client.take_lines()[0]
    assert ack.params[1:] == ["ACK", "server-time echo-message"]
    client.send("CAP REQ :server-time unknown-cap")
    assert client.take_lines()[0].params[1] == "NAK"
    assert client.conn.caps == {"server-time", "echo-message"}
    client.send("CAP LIST")
    assert client.take_lines()[0].params[-1] == "echo-message server-time"
    client.send("CAP END")
    assert client.take_actions() == [Open(None)]
    client.send("CAP REQ :-echo-message")
    assert client.conn.caps == {"server-time"}


def test_cap_ls_without_302_has_no_values() -> None:
    client = Client().send("CAP LS")
    assert "sasl" in client.take_lines()[0].params[-1].split()


def test_sasl_plain_signs_in_before_cap_end() -> None:
    client = Client().send("CAP LS 302", "NICK Bob", "USER b 0 * :x", "CAP REQ :sasl")
    client.take_lines()
    client.send("AUTHENTICATE PLAIN")
    assert client.take_lines()[0].params == ["+"]
    client.send(f"AUTHENTICATE {plain('secret')}")
    actions = client.take_actions()
    assert Open(None) in actions  # SASL needs the session: opened before CAP END
    client.event(welcome())
    requests = client.requests()
    assert rq.Auth(token="secret", ref="SASL:") in [
        a.request for a in actions if hasattr(a, "request")
    ]
    assert requests == [rq.Nick(name="Bob", ref="REG:")]
    client.event(
        ev.Notice(kind="auth", text="you are signed in as a moderator", name="mod", ref="SASL:")
    )
    assert [line.command for line in client.take_lines()] == ["900", "903"]
    client.event(ev.Notice(kind="nick", text="", name="Bob", ref="REG:"))
    assert client.take_lines() == []  # still negotiating
    client.send("CAP END")
    assert client.commands()[0] == "001"


def test_sasl_failures() -> None:
    client = Client().send("CAP REQ :sasl", "NICK Bob", "USER b 0 * :x")
    client.take_lines()
    client.send("AUTHENTICATE EXTERNAL")
    assert client.commands() == ["908", "904"]
    client.send("AUTHENTICATE PLAIN", "AUTHENTICATE *")
    assert client.commands() == ["AUTHENTICATE", "906"]
    client.send("AUTHENTICATE PLAIN", "AUTHENTICATE not-base64!")
    assert client.commands() == ["AUTHENTICATE", "904"]
    client.send(
        "AUTHENTICATE PLAIN", "AUTHENTICATE " + "A" * 400, *["AUTHENTICATE " + "A" * 400] * 4
    )
    assert "905" in client.commands()
    client.send("AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('wrong')}")
    client.take_lines()
    client.event(welcome())
    client.event(ev.Error(code="forbidden", message="that token is not valid", ref="SASL:"))
    assert client.commands() == ["904"]


def test_sasl_in_chunks() -> None:
    token = "t" * 500
    payload = plain(token)
    client = Client().send("CAP REQ :sasl", "NICK Bob", "USER b 0 * :x", "AUTHENTICATE PLAIN")
    chunks = [payload[i : i + 400] for i in range(0, len(payload), 400)]
    client.send(*[f"AUTHENTICATE {chunk}" for chunk in chunks])
    if len(chunks[-1]) == 400:
        client.send("AUTHENTICATE +")
    auth = [a for a in client.take_actions() if hasattr(a, "request")]
    assert auth[0].request == rq.Auth(token=token, ref="SASL:")


def test_pass_token_signs_in_after_welcome() -> None:
    client = Client().send("PASS s3cret", "NICK Quiet_Otter", "USER a 0 * :x")
    assert client.take_actions() == [Open(None)]
    client.event(welcome())
    assert client.requests() == [rq.Auth(token="s3cret", ref="PASS:")]
    client.event(ev.Error(code="forbidden", message="that token is not valid", ref="PASS:"))
    assert any("not accepted" in line.params[-1] for line in client.take_lines())


def test_pass_resume_comes_back_as_before() -> None:
    client = Client().send("CAP REQ :batch server-time message-tags", "PASS resume:tok")
    client.send("NICK Whoever", "USER a 0 * :x", "CAP END")
    assert client.take_actions()[-1] == Open("tok")
    client.take_lines()
    client.event(welcome(name="Gentle Heron", session="tok"))
    assert client.take_actions() == [Resume("tok", client_fetches=False, rooms=("lobby",))]
    client.event(joined("lobby", ev.Member("u1", "Gentle Heron")), message(7), message(8))
    client.event(ev.Resumed(missed=2, complete=True))
    lines = client.take_lines()
    assert lines[0].command == "001" and lines[0].params[0] == "Gentle_Heron"
    commands = [line.command for line in lines]
    start = commands.index("BATCH")
    assert lines[start].params[1:] == ["chathistory", "#lobby"]
    replayed = [line for line in lines if line.command == "PRIVMSG"]
    assert [line.tags["msgid"] for line in replayed] == ["lobby.7", "lobby.8"]
    assert all(line.tags["batch"] == lines[start].params[0][1:] for line in replayed)
    assert commands.index("BATCH", start + 1) > commands.index("PRIVMSG")
    assert "Caught up: 2 messages you missed" in lines[-1].params[-1]


def test_resume_with_chathistory_leaves_the_catch_up_to_the_client() -> None:
    client = Client().send(
        "CAP REQ draft/chathistory", "PASS resume:tok", "NICK x", "USER a 0 * :x"
    )
    client.send("CAP END").take_actions()
    client.event(welcome(session="tok"))
    assert client.take_actions() == [Resume("tok", client_fetches=True, rooms=("lobby",))]


def test_a_stale_resume_token_is_a_fresh_session() -> None:
    client = Client().send("PASS resume:old", "NICK Bob", "USER a 0 * :x")
    client.take_actions()
    client.event(welcome(session="new"))
    assert client.requests() == [rq.Nick(name="Bob", ref="REG:")]


def test_user_again_and_pass_late_are_462() -> None:
    client = registered()
    client.send("USER a 0 * :x", "PASS x")
    assert client.commands() == ["462", "462"]


def test_quit_before_and_after_registration() -> None:
    client = Client().send("QUIT :bye")
    assert client.commands() == ["ERROR"]
    assert client.take_actions() == [Close("quit")]
    client = registered()
    client.send("QUIT :bye")
    assert client.requests() == [rq.Quit(ref="QUIT:")]
    client.event(ev.Bye(reason="quit"))
    assert client.commands() == ["ERROR"]
    assert client.take_actions() == [Close("quit")]


def test_ping_any_time() -> None:
    client = Client().send("PING :abc")
    assert client.take_lines()[0].params == ["chatsupport", "abc"]
