"""A registered client without sockets: IRC commands -> core requests, core events -> lines."""

from __future__ import annotations

from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.transport.ircproto.actions import Close, Fetch
from chatsupport.transport.ircproto.connection import PROBE_GAP, IrcConnection
from chatsupport.transport.ircproto.message import MAX_BODY

from .helpers import CODEC, NOW, message, registered

OTTER = "Quiet_Otter!anon@chatsupport/anon"
HERON = "Gentle_Heron!anon@chatsupport/anon"


# ---- malformed input: answered, and the connection goes on ----------------------------------
def test_overlong_lines_are_417_and_the_connection_goes_on() -> None:
    client = registered()
    client.send("PRIVMSG #lobby :" + "x" * MAX_BODY)
    client.send("@" + "a" * 5000 + " PING x")
    assert client.commands() == ["417", "417"]
    client.send("PING :still")
    assert client.take_lines()[0].params[-1] == "still"


def test_bad_utf8_nul_and_garbage() -> None:
    client = registered()
    client.send(b"PRIVMSG #lobby :caf\xe9")
    fail = client.take_lines()[0]
    assert fail.command == "FAIL" and fail.params[:2] == ["PRIVMSG", "INVALID_UTF8"]
    client.send(b"PRIVMSG #lobby :a\x00b")
    assert client.take_lines()[0].params[:2] == ["Quiet_Otter", "PRIVMSG"]  # 400
    client.send(":source.only", "!!!")
    assert client.commands() == ["421", "421"]
    assert client.requests() == []


def test_missing_parameters_and_unknown_commands() -> None:
    client = registered()
    client.send("JOIN", "PRIVMSG", "KICK #lobby", "MODE", "FROB x")
    lines = client.take_lines()
    assert [(line.command, line.params[1]) for line in lines] == [
        ("461", "JOIN"),
        ("461", "PRIVMSG"),
        ("461", "KICK"),
        ("461", "MODE"),
        ("421", "FROB"),
    ]
    client.send("PRIVMSG #lobby", "PRIVMSG #lobby :")
    assert client.commands() == ["412", "412"]


def test_input_without_line_end_ends_the_connection() -> None:
    client = registered(max_partial=1000)
    client.conn.receive_data(b"x" * 1001)
    client.collect()
    assert client.commands() == ["ERROR"]
    assert client.take_actions() == [Close("input line too long (no line end)")]


def test_lines_cut_across_reads_and_bare_lf() -> None:
    client = registered()
    client.conn.receive_data(b"PRIVMSG #lobby :caf" + "é".encode()[:1])
    client.conn.receive_data("é".encode()[1:] + b"\nPING x\r\n")
    client.collect()
    assert client.requests() == [rq.Say(text="café", room="lobby", ref="PRIVMSG:lobby")]


# ---- commands -> requests ------------------------------------------------------------------
def test_talking() -> None:
    client = registered()
    client.send(
        "PRIVMSG #lobby :hello",
        "PRIVMSG #Lobby :/not a command",
        "PRIVMSG #lobby :\x01ACTION waves\x01",
        "PRIVMSG #lobby :\x02bold\x02 \x0304red",
        "NOTICE #lobby :a notice",
        "PRIVMSG #lobby :\x01VERSION\x01",
    )
    assert client.requests() == [
        rq.Say(text="hello", room="lobby", ref="PRIVMSG:lobby"),
        rq.Say(text="//not a command", room="lobby", ref="PRIVMSG:lobby"),
        rq.Me(text="waves", room="lobby", ref="PRIVMSG:lobby"),
        rq.Say(text="bold red", room="lobby", ref="PRIVMSG:lobby"),
        rq.Say(text="a notice", room="lobby", ref="PRIVMSG:lobby"),
    ]


def test_private_messages_to_people_are_explained() -> None:
    client = registered()
    client.send("PRIVMSG Gentle_Heron :psst")
    assert client.requests() == []
    notice = client.take_lines()[0]
    assert notice.command == "NOTICE" and "TALK" in notice.params[1]


def test_rooms() -> None:
    client = registered()
    client.send("JOIN #help,#lobby,#Bad_Name,nohash", "PART #help :bye", "JOIN 0")
    assert client.requests() == [
        rq.Join(room="help", ref="JOIN:help"),
        rq.Leave(room="help", ref="PART:help"),
        rq.Leave(room="lobby", ref="PART:lobby"),
    ]
    assert client.commands() == ["479", "479"]
    client.send("NAMES #lobby", "WHO #lobby", "WHO someone", "LIST", "TOPIC #lobby")
    assert client.requests() == [
        rq.Who(room="lobby", ref="NAMES:lobby"),
        rq.Who(room="lobby", ref="WHO:lobby"),
        rq.Rooms(ref="LIST:"),
    ]
    assert client.commands() == ["315", "331"]


def test_nick_change() -> None:
    client = registered()
    client.send("NICK Sleepy_Cat")
    assert client.requests() == [rq.Nick(name="Sleepy Cat", ref="NICK:Sleepy_Cat")]
    client.event(ev.Notice(kind="nick", text="you are now Sleepy Cat", name="Sleepy Cat"))
    line = client.take_lines()[0]
    assert (line.source, line.command, line.params) == (OTTER, "NICK", ["Sleepy_Cat"])
    assert client.conn.nick == "Sleepy_Cat"
    client.event(ev.Error(code="name_taken", message="taken", ref="NICK:Gentle_Heron"))
    assert client.take_lines()[0].params[:2] == ["Sleepy_Cat", "Gentle_Heron"]


def test_moderation_as_irc_commands() -> None:
    client = registered()
    client.send(
        "KICK #lobby Gentle_Heron :enough",
        "MODE #lobby +b Gentle_Heron!*@*",
        "MODE #lobby -b Gentle_Heron",
        "MODE #lobby +q Gentle_Heron",
        "MODE #lobby +m-m",
    )
    assert client.requests() == [
        rq.Kick(name="Gentle Heron", reason="enough", ref="KICK:lobby"),
        rq.Ban(name="Gentle Heron", ref="MODE:lobby"),
        rq.Unban(name="Gentle Heron", ref="MODE:lobby"),
        rq.Mute(name="Gentle Heron", ref="MODE:lobby"),
        rq.Lock(room="lobby", ref="MODE:lobby"),
        rq.Unlock(room="lobby", ref="MODE:lobby"),
    ]
    client.send("MODE #lobby", "MODE #lobby b", "MODE #lobby +x", "MODE Quiet_Otter", "MODE x +i")
    assert client.commands() == ["324", "368", "472", "221", "502"]


def test_product_commands_by_quote_and_by_service() -> None:
    client = registered()
    client.send("TALK", "LISTEN off", "MUTE Gentle_Heron 5", "REPORT Gentle_Heron :was rude")
    client.send("SLOW #lobby 10", "ANNOUNCE :hello all", "UNLOCK #help", "HANDOFF #dm-1")
    client.send("PRIVMSG ChatSupport :ban Gentle_Heron 30", "PRIVMSG ChatSupport :help talk")
    client.send("PRIVMSG chatsupport :report Gentle_Heron was rude", "IGNORE Gentle_Heron")
    requests = client.requests()
    for request in requests:
        request.ref = None
    assert requests == [
        rq.Talk(),
        rq.Listen(on=False),
        rq.Mute(name="Gentle Heron", minutes=5),
        rq.Report(name="Gentle Heron", reason="was rude"),
        rq.Slow(room="lobby", seconds=10),
        rq.Announce(text="hello all"),
        rq.Unlock(room="help"),
        rq.Handoff(room="dm-1"),
        rq.Ban(name="Gentle Heron", minutes=30),
        rq.Help(topic="talk"),
        rq.Report(name="Gentle Heron", reason="was rude"),
        rq.Ignore(name="Gentle Heron"),
    ]
    client.send("PRIVMSG ChatSupport :dance", "MUTE")
    assert [line.command for line in client.take_lines()] == ["NOTICE", "NOTICE"]


def test_chathistory_asks_for_a_fetch() -> None:
    client = registered(caps="batch draft/chathistory")
    client.conn.channels.add("lobby")
    client.send("CHATHISTORY LATEST #lobby * 50", "CHATHISTORY LATEST #nope * 5")
    fetch = client.take_actions()[0]
    assert isinstance(fetch, Fetch) and fetch.query.rooms == ("lobby",)
    fail = client.take_lines()[0]
    assert fail.params[:2] == ["CHATHISTORY", "INVALID_TARGET"]


# ---- events -> lines -----------------------------------------------------------------------
def test_messages_plain_and_tagged() -> None:
    plain = registered()
    plain.event(message(5, "hello"))
    line = plain.take_lines()[0]
    assert (line.source, line.command, line.params, line.tags) == (
        OTTER,
        "PRIVMSG",
        ["#lobby", "hello"],
        {},
    )
    tagged = registered(caps="server-time message-tags")
    tagged.event(message(5, "two\nlines", kind="me"))
    first, second = tagged.take_lines()
    assert first.params == ["#lobby", "\x01ACTION two\x01"]
    assert second.params == ["#lobby", "\x01ACTION lines\x01"]
    assert first.tags == {"time": "2023-11-14T22:13:25.000Z", "msgid": "lobby.5"}
    assert second.tags["msgid"] == "lobby.5.2"


def test_announcement_is_a_server_notice() -> None:
    client = registered()
    client.event(message(6, "maintenance soon", kind="announce", role="mod"))
    line = client.take_lines()[0]
    assert (line.source, line.command, line.params) == (
        "chatsupport",
        "NOTICE",
        ["#lobby", "maintenance soon"],
    )


def test_long_messages_are_cut_to_fit() -> None:
    client = registered()
    text = "word " * 400
    client.event(message(7, text.strip()))
    lines = client.raw[-1].split(b"\r\n")[:-1]
    assert len(lines) > 3 and all(len(line) + 2 <= 512 for line in lines)
    assert " ".join(line.params[1] for line in client.take_lines()) == text.strip()


def test_own_messages_only_with_echo_message() -> None:
    own = message(8, "mine", uid="u1", name="Quiet Otter", ref="PRIVMSG:lobby")
    plain = registered()
    plain.event(own)
    assert plain.take_lines() == []
    echo = registered(caps="echo-message")
    echo.event(own)
    assert echo.take_lines()[0].params == ["#lobby", "mine"]
    assert plain.conn.seen == {"lobby": 8}  # still counted as seen


def test_encoded_once_for_everyone_with_the_same_caps() -> None:
    event = message(9, "shared")
    a, b = registered(caps="server-time"), registered(caps="server-time")
    a.event(event)
    b.event(event)
    assert a.raw[-1] is b.raw[-1]
    assert CODEC.message(event, True, False) is a.raw[-1]


def test_presence() -> None:
    client = registered()
    client.event(
        ev.Presence(room="lobby", event="join", uid="u2", name="Gentle Heron", count=2),
        ev.Presence(
            room="lobby", event="nick", uid="u2", name="Calm Fox", count=2, old="Gentle Heron"
        ),
        ev.Presence(
            room="help", event="nick", uid="u2", name="Calm Fox", count=2, old="Gentle Heron"
        ),
        ev.Presence(room="lobby", event="leave", uid="u2", name="Calm Fox", count=1),
        ev.Presence(room="lobby", event="join", uid="u1", name="Quiet Otter", count=2),
    )
    lines = client.take_lines()
    assert [(line.source, line.command, line.params) for line in lines] == [
        (HERON, "JOIN", ["#lobby"]),
        (HERON, "NICK", ["Calm_Fox"]),
        ("Calm_Fox!anon@chatsupport/anon", "PART", ["#lobby"]),
    ]


def test_away_back_and_deleted_are_said_in_the_channel() -> None:
    client = registered()
    client.event(
        ev.Presence(room="lobby", event="away", uid="u2", name="Gentle Heron", count=2, away=1),
        ev.Presence(room="lobby", event="back", uid="u2", name="Gentle Heron", count=2),
        ev.Deleted(room="lobby", id=4, uid="u2", name="Gentle Heron"),
        ev.Deleted(room="lobby", id=5, uid="u2", name="Gentle Heron", moderated=True),
        ev.Typing(room="dm-ab", uid="u2", name="Gentle Heron"),  # nothing: no IRC form
    )
    lines = client.take_lines()
    assert [(line.command, line.params) for line in lines] == [
        ("NOTICE", ["#lobby", "Gentle_Heron is away"]),
        ("NOTICE", ["#lobby", "Gentle_Heron is back"]),
        ("NOTICE", ["#lobby", "a message from Gentle_Heron was deleted"]),
        ("NOTICE", ["#lobby", "a message from Gentle_Heron was deleted by a moderator"]),
    ]
    assert {line.source for line in lines} == {"ChatSupport!service@chatsupport"}


def test_joined_names_who_and_list() -> None:
    client = registered()
    members = [
        ev.Member("u1", "Quiet Otter"),
        ev.Member("u2", "Gentle Heron", "mod"),
        ev.Member("u3", "Calm Fox", "listener"),
    ]
    client.event(ev.Joined(room="help", count=3, members=members))
    client.event(ev.Joined(room="help", count=3, members=members))  # again: nothing new
    lines = client.take_lines()
    assert [line.command for line in lines] == ["JOIN", "353", "366"]
    assert lines[1].params == ["Quiet_Otter", "=", "#help", "Quiet_Otter @Gentle_Heron +Calm_Fox"]
    client.event(ev.Who(room="help", members=members, ref="WHO:help"))
    who = client.take_lines()
    assert [line.command for line in who] == ["352", "352", "352", "315"]
    assert who[1].params[1:7] == [
        "#help",
        "anon",
        "chatsupport/anon",
        "chatsupport",
        "Gentle_Heron",
        "H@",
    ]
    client.event(ev.Who(room="help", members=members, ref="NAMES:help"))
    assert [line.command for line in client.take_lines()] == ["353", "366"]
    client.event(ev.Rooms(rooms=[ev.RoomInfo("lobby", 5), ev.RoomInfo("help", 3)], ref="LIST:"))
    listed = client.take_lines()
    assert [line.command for line in listed] == ["321", "322", "322", "323"]
    assert listed[1].params[1:3] == ["#lobby", "5"]
    client.event(ev.Left(room="help"))
    assert client.take_lines()[0].command == "PART"
    client.event(ev.Left(room="help"))
    assert client.take_lines() == []


def test_errors_become_the_commands_numerics() -> None:
    client = registered()
    cases = [
        (ev.Error(code="muted", message="you are muted", ref="PRIVMSG:lobby"), "404"),
        (ev.Error(code="forbidden", message="that room is private", ref="JOIN:dm-1"), "473"),
        (ev.Error(code="banned", message="banned", ref="JOIN:help"), "474"),
        (ev.Error(code="bad_request", message="at most 10 rooms", ref="JOIN:x"), "405"),
        (ev.Error(code="not_in_room", message="not in #x", ref="PART:x"), "442"),
        (ev.Error(code="forbidden", message="only moderators", ref="KICK:lobby"), "482"),
        (ev.Error(code="forbidden", message="/mute is for mods", ref="SVC:MUTE"), "481"),
        (ev.Error(code="forbidden", message="private", ref="NAMES:dm-1"), "366"),
        (ev.Error(code="bad_request", message="nobody called X is here", ref="SVC:MUTE"), "NOTICE"),
        (ev.Error(code="rate_limited", message="slow down", ref=None), "NOTICE"),
    ]
    for event, numeric in cases:
        client.event(event)
        line = client.take_lines()[0]
        assert line.command == numeric, event
        if numeric in ("404", "473", "442", "482"):
            assert line.params[-1] == event.message


def test_notices_from_the_service() -> None:
    client = registered()
    resources = [{"line": "Samaritans: 116 123"}, {"name": "Shout"}]
    client.event(ev.Notice(kind="resources", text="Help lines:", resources=resources))
    texts = [line.params[1] for line in client.take_lines()]
    assert texts == ["Help lines:", "Samaritans: 116 123", "Shout"]
    client.event(ev.Notice(kind="help", text="Commands:\n  /talk  ask"))
    lines = client.take_lines()
    assert "/msg ChatSupport" in lines[0].params[1] and len(lines) == 3
    assert lines[0].source == "ChatSupport!service@chatsupport"
    client.event(ev.Notice(kind="unavailable", text="delivery is interrupted"))
    assert client.take_lines()[0].source == "chatsupport"


def test_one_to_one() -> None:
    client = registered()
    partner = ev.Member("u9", "Kind Owl", "listener")
    client.event(ev.Queue(position=2), ev.Matched(room="dm-abc", partner=partner))
    lines = client.take_lines()
    assert "number 2" in lines[0].params[1]
    assert (lines[1].source, lines[1].command, lines[1].params) == (OTTER, "JOIN", ["#dm-abc"])
    assert lines[2].params[1:] == ["@", "#dm-abc", "Quiet_Otter +Kind_Owl"]
    assert "Kind_Owl" in lines[4].params[1]
    client.event(ev.Ended(room="dm-abc", reason="partner_left"))
    lines = client.take_lines()
    assert "partner left" in lines[0].params[1]
    assert lines[1].command == "PART"


def test_the_waiting_room_and_the_note_as_notices() -> None:
    """The queue says who is on and what recent waits suggest; the listener gets the note."""
    client = registered()
    client.event(ev.Queue(position=1, listeners=0), ev.Queue(position=1, listeners=2, wait=240))
    texts = [line.params[1] for line in client.take_lines()]
    assert "number 1" in texts[0] and texts[1].startswith("No listener is on right now")
    assert texts[3] == "2 listeners on now; recent waits suggest about 4 minutes."
    partner = ev.Member("u9", "Quiet Otter")
    client.event(ev.Matched(room="dm-abc", partner=partner, note="a rough week"))
    assert client.take_lines()[-1].params[1] == "While waiting they wrote: a rough week"
    client.event(ev.Alert(kind="waiting", room="", uid="", name="", text="1 waiting"))
    assert [line.params[1] for line in client.take_lines()] == ["[alert] 1 waiting"]


def test_seekers_first_commands() -> None:
    client = registered()
    client.send("TALK :a rough week", "END #dm-1 report :was cruel", "FEEDBACK not-really")
    client.send("REGION gb", "OFFER Gentle_Heron", "PRIVMSG ChatSupport :debrief that was hard")
    requests = client.requests()
    for request in requests:
        request.ref = None
    assert requests == [
        rq.Talk(note="a rough week"),
        rq.End(room="dm-1", report="was cruel"),
        rq.Feedback(answer="not_really"),
        rq.Region(code="gb"),
        rq.Offer(name="Gentle Heron"),
        rq.Debrief(note="that was hard"),
    ]
    client.send("FEEDBACK maybe")  # the text interface's words for what is wrong
    assert [line.params[1] for line in client.take_lines()] == [
        "say /feedback helpful, /feedback not-really or /feedback skip"
    ]


def test_staff_see_reports_and_alerts() -> None:
    client = registered()
    evidence = [message(1, "before"), message(2, "the bad one")]
    client.event(
        ev.Report(
            id="r1", reporter="x", uid="u2", name="Quiet Otter", room="lobby",
            reason="rude", evidence=evidence, ts=NOW,
        ),
        ev.Alert(kind="crisis", room="lobby", uid="u2", name="Gentle Heron", text="help me"),
    )  # fmt: skip
    texts = [line.params[1] for line in client.take_lines()]
    assert texts[0] == "[report r1] Quiet_Otter in #lobby: rude"
    assert texts[2] == " > <Quiet_Otter> the bad one"
    assert texts[3] == "[alert] Gentle_Heron in #lobby may need help: help me"


def test_bye_is_error_and_close() -> None:
    client = registered()
    client.event(ev.Bye(reason="too_slow"))
    line = client.take_lines()[0]
    assert line.command == "ERROR" and "too slow" in line.params[0]
    assert client.take_actions() == [Close("too slow: you were not reading fast enough")]
    client.event(message(1))
    assert client.take_lines() == []


def test_history_reply_in_a_batch() -> None:
    client = registered(caps="batch server-time message-tags draft/chathistory")
    client.conn.channels.add("lobby")
    client.send("CHATHISTORY AFTER #lobby msgid=lobby.1 2")
    fetch = client.take_actions()[0]
    assert isinstance(fetch, Fetch)
    client.conn.history(fetch.query, {"lobby": [message(i) for i in range(1, 6)]})
    lines = client.collect().take_lines()
    assert [line.command for line in lines] == ["BATCH", "PRIVMSG", "PRIVMSG", "BATCH"]
    assert lines[0].params[1:] == ["chathistory", "#lobby"]
    assert [line.tags["msgid"] for line in lines[1:3]] == ["lobby.2", "lobby.3"]


def test_connection_module_has_no_io() -> None:
    assert not hasattr(IrcConnection, "transport")


# ---- what the client has read: PINGs that confirm it ----------------------------------------
def test_a_resume_point_moves_only_when_a_ping_after_the_messages_is_answered() -> None:
    now = 100.0  # a monotonic clock's seconds
    client = registered()
    assert client.conn.probe_due(now) is None  # nothing written: nothing to confirm
    client.event(message(1), message(2))
    assert client.conn.seen == {"lobby": 2} and client.conn.confirmed == {}
    assert client.conn.probe_due(now) == 0
    client.conn.probe(now)
    ping = client.collect().take_lines()[-1]
    assert ping.command == "PING" and ping.source is None
    client.event(message(3))
    assert client.conn.probe_due(now) is None  # one PING at a time
    client.send("PONG :not-that-one", "PONG")
    assert client.conn.confirmed == {}
    client.send(f"PONG irc.example :{ping.params[-1]}")
    assert client.conn.confirmed == {"lobby": 2}  # what was written before that PING
    assert client.conn.probe_due(now) == PROBE_GAP  # message 3 waits for the next one
    now += PROBE_GAP
    assert client.conn.probe_due(now) == 0
    client.conn.probe(now)
    client.send(f"PONG :{client.collect().take_lines()[-1].params[-1]}")
    assert client.conn.confirmed == {"lobby": 3}
    assert client.conn.probe_due(now) is None  # all read: quiet until the next message


def test_a_resumed_connection_starts_from_what_the_last_one_had_read() -> None:
    client = registered()
    client.conn.resumed_from({"lobby": 7, "side": 3})
    assert client.conn.confirmed == client.conn.seen == {"lobby": 7, "side": 3}
    assert client.conn.probe_due(0.0) is None
