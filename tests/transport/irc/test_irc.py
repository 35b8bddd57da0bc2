"""The IRC interface over real sockets, beside netcat and WebSocket peers in the same rooms."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from pathlib import Path

from chatsupport import ChatServer
from chatsupport.transport.ircproto.message import Line

from ...certs import make_certificate
from ...helpers import TextClient, WsClient, start_server
from ...ircraw import IrcClient
from ...mod_helpers import LISTENER_TOKEN, MOD_TOKEN, staff_ws, tcp_sync


# ---- registration --------------------------------------------------------------------------
async def test_the_nick_asked_for_is_given(server: ChatServer) -> None:
    bob = await IrcClient.connect(server.irc_port, "Bob")
    assert bob.nick == "Bob"
    tcp = await TextClient.open(server.tcp_port)
    await bob.send_lines("NAMES #lobby")
    names = await bob.expect("353")
    assert "Bob" in names.params[-1].split()
    assert tcp.name.replace(" ", "_") in names.params[-1].split()


async def test_a_taken_or_staff_looking_nick_gets_an_anonymous_name(server: ChatServer) -> None:
    tcp = await TextClient.open(server.tcp_port)
    taken = tcp.name.replace(" ", "_")
    other = await IrcClient.connect(server.irc_port, taken, register=False)
    await other.send_lines(f"NICK {taken}", "USER u 0 * :x")
    welcome = await other.expect("001")
    assert welcome.params[0] != taken
    assert (await other.expect("433")).params[1] == taken
    notice = await other.expect("NOTICE")
    assert f"You asked for the nick {taken}" in notice.params[1]
    admin = await IrcClient.connect(server.irc_port, "Admin")
    assert admin.nick != "Admin"


async def test_cap_negotiation_and_server_time(server: ChatServer) -> None:
    irc = await IrcClient.connect(server.irc_port, register=False)
    await irc.send_lines("CAP LS 302", "NICK Ann", "USER a 0 * :x")
    ls = await irc.expect("CAP")
    assert "draft/chathistory" in ls.params[-1] and "sasl=PLAIN" in ls.params[-1]
    await irc.send_lines("CAP REQ :server-time message-tags echo-message", "CAP END")
    assert (await irc.expect("CAP")).params[1] == "ACK"
    await irc.expect("001")
    await irc.expect("366")
    await irc.send_lines("PRIVMSG #lobby :hello me")
    echo = await irc.expect("PRIVMSG")
    assert echo.params == ["#lobby", "hello me"] and str(echo.source).startswith("Ann!")
    assert echo.tags["msgid"].startswith("lobby.") and echo.tags["time"].endswith("Z")


async def test_sasl_plain_and_pass_sign_staff_in(staff_server: ChatServer) -> None:
    port = staff_server.irc_port
    mod = await IrcClient.connect(port, register=False)
    plain = base64.b64encode(f"\0mod\0{MOD_TOKEN}".encode()).decode()
    await mod.send_lines("CAP LS 302", "NICK Keeper", "USER k 0 * :x", "CAP REQ :sasl")
    await mod.expect("CAP", "*", "LS")
    await mod.expect("CAP")
    await mod.send_lines("AUTHENTICATE PLAIN")
    await mod.expect("AUTHENTICATE")
    await mod.send_lines(f"AUTHENTICATE {plain}")
    assert (await mod.expect("900")).params[2] == "mod"
    await mod.expect("903")
    await mod.send_lines("CAP END")
    await mod.expect("001")
    names = await mod.expect("353")
    assert "@Keeper" in names.params[-1].split()
    listener = await IrcClient.connect(port, "Ear", password=LISTENER_TOKEN)
    signed = await listener.expect("NOTICE")
    assert "listener" in signed.params[1]
    wrong = await IrcClient.connect(port, "Guess", password="nope")
    assert "not accepted" in (await wrong.expect("NOTICE")).params[1]


async def test_registration_times_out_only_for_the_silent(server: ChatServer) -> None:
    irc = await IrcClient.connect(server.irc_port, register=False)
    await irc.send_lines("PING :early")
    assert (await irc.expect("PONG")).params[-1] == "early"
    await irc.send_lines("JOIN #lobby")
    assert (await irc.expect("451")).params[-1] == "You have not registered"


# ---- rooms and messages with netcat and WebSocket peers ---------------------------------------
async def test_irc_netcat_and_websocket_in_one_room(server: ChatServer) -> None:
    irc = await IrcClient.connect(server.irc_port, "Bob")
    tcp = await TextClient.open(server.tcp_port)
    ws = await WsClient.open(server.http_port)
    await irc.send_lines("PRIVMSG #lobby :hello from irc", "PRIVMSG #lobby :\x01ACTION waves\x01")
    assert await tcp.expect(lambda s: "irc" in s) == "<Bob> hello from irc"
    assert await tcp.expect(lambda s: "waves" in s) == "* Bob waves"
    said = await ws.expect("message", text="hello from irc")
    assert said["name"] == "Bob"
    assert (await ws.expect("message", text="waves"))["kind"] == "me"
    await tcp.send("hi from nc")
    await tcp.send("/me nods")
    await ws.send({"type": "say", "room": "lobby", "text": "two\nlines"})
    got = await irc.expect("PRIVMSG", "#lobby", "hi from nc")
    assert got.source == tcp.name.replace(" ", "_") + "!anon@chatsupport/anon"
    assert (await irc.expect("PRIVMSG")).params[1] == "\x01ACTION nods\x01"
    assert (await irc.expect("PRIVMSG")).params[1] == "two"
    assert (await irc.expect("PRIVMSG")).params[1] == "lines"
    await tcp.send("/nick Still Pond")
    renamed = await irc.expect("NICK")
    assert renamed.params == ["Still_Pond"]


async def test_channels_join_part_names_who_list_topic(server: ChatServer) -> None:
    irc = await IrcClient.connect(server.irc_port, "Bob")
    tcp = await TextClient.open(server.tcp_port)
    await irc.send_lines("JOIN #night-owls")
    joined = await irc.expect("JOIN", "#night-owls")
    assert joined.params == ["#night-owls"] and joined.source == "Bob!anon@chatsupport/anon"
    await irc.expect("366", "#night-owls")
    await tcp.send("/join night-owls")
    arrived = await irc.expect("JOIN", "#night-owls")
    assert str(arrived.source).startswith(tcp.name.replace(" ", "_") + "!")
    await irc.send_lines("WHO #night-owls")
    who = [await irc.expect("352"), await irc.expect("352")]
    assert {w.params[5] for w in who} == {"Bob", tcp.name.replace(" ", "_")}
    await irc.expect("315")
    await irc.send_lines("LIST")
    listed = {}
    while (line := await irc.read()).command != "323":
        if line.command == "322":
            listed[line.params[1]] = int(line.params[2])
    assert listed == {"#lobby": 2, "#night-owls": 2}
    await irc.send_lines("TOPIC #night-owls", "PART #night-owls :bye")
    await irc.expect("331")
    assert (await irc.expect("PART")).params[0] == "#night-owls"
    assert await tcp.expect(lambda s: "left" in s) == "-- Bob left #night-owls (1 here)"
    await irc.send_lines("PRIVMSG #night-owls :still here?", "PART #nowhere")
    assert (await irc.expect("404")).params[1] == "#night-owls"
    assert (await irc.expect("442")).params[1] == "#nowhere"


async def test_malformed_lines_are_answered_and_the_connection_goes_on(server: ChatServer) -> None:
    irc = await IrcClient.connect(server.irc_port, "Bob")
    tcp = await TextClient.open(server.tcp_port)
    await irc.send_lines(b"PRIVMSG #lobby :" + b"x" * 600)
    await irc.expect("417")
    await irc.send_lines(b"PRIVMSG #lobby :caf\xe9")
    assert (await irc.expect("FAIL")).params[:2] == ["PRIVMSG", "INVALID_UTF8"]
    await irc.send_lines(b"PRIVMSG #lobby :a\x00b")
    assert (await irc.expect("400")).params[1] == "PRIVMSG"
    await irc.send_lines("PRIVMSG", "KICK #lobby", "NOSUCHTHING", ":prefix.only")
    assert (await irc.expect("461")).params[1] == "PRIVMSG"
    assert (await irc.expect("461")).params[1] == "KICK"
    assert (await irc.expect("421")).params[1] == "NOSUCHTHING"
    await irc.expect("421")
    await irc.send_lines("PRIVMSG #lobby :still fine")
    assert await tcp.expect(lambda s: s.startswith("<Bob>")) == "<Bob> still fine"
    lines = await tcp_sync(tcp)
    assert not any("caf" in line or "xxx" in line for line in lines)  # nothing else got out


async def test_input_without_a_line_end_ends_only_that_connection(server: ChatServer) -> None:
    irc = await IrcClient.connect(server.irc_port, "Bob")
    other = await IrcClient.connect(server.irc_port, "Ann")
    irc.writer.write(b"x" * (server.config.max_partial_line + 10))
    await irc.writer.drain()
    error = await irc.expect("ERROR")
    assert "no line end" in error.params[0]
    assert await irc.closed()
    await other.sync()


# ---- notices, moderation -----------------------------------------------------------------------
async def test_help_crisis_lines_and_announcements(staff_server: ChatServer) -> None:
    irc = await IrcClient.connect(staff_server.irc_port, "Bob")
    await irc.send_lines("PRIVMSG ChatSupport :help talk")
    await irc.expect(lambda line: line.command == "NOTICE" and "/talk" in line.params[1])
    await irc.send_lines("PRIVMSG #lobby :i want to kill myself")
    help_lines = [line for line in await irc.sync() if line.command == "NOTICE"]
    assert any("Emergency services: call 112" in line.params[1] for line in help_lines)
    assert {line.source for line in help_lines} == {"ChatSupport!service@chatsupport"}
    mod = await staff_ws(staff_server.http_port)
    await mod.send({"type": "announce", "text": "maintenance at noon"})
    announced = await irc.expect(lambda line: "maintenance" in line.params[-1])
    assert (announced.command, announced.params[0]) == ("NOTICE", "#lobby")


async def test_moderation_with_irc_words(staff_server: ChatServer) -> None:
    mod = await IrcClient.connect(staff_server.irc_port, "Keeper", password=MOD_TOKEN)
    await mod.expect("NOTICE")
    rude = await TextClient.open(staff_server.tcp_port)
    nick = rude.name.replace(" ", "_")
    await mod.send_lines(f"MODE #lobby +q {nick}")
    assert "muted" in (await rude.expect(lambda s: "muted" in s))
    await rude.send("still talking")
    assert "muted" in await rude.expect(lambda s: s.startswith("!!"))
    await mod.send_lines(f"MODE #lobby -q {nick}", "MODE #lobby +m")
    await rude.expect(lambda s: "write again" in s)
    plain = await IrcClient.connect(staff_server.irc_port, "Nobody")
    await plain.send_lines(f"KICK #lobby {nick} :bye", f"MUTE {nick} 5")
    assert (await plain.expect("482")).params[1] == "#lobby"
    await plain.expect("481")
    await mod.send_lines("MODE #lobby -m", f"KICK #lobby {nick} :enough")
    assert await rude.closed()
    await plain.sync()


async def test_one_to_one_with_a_listener(staff_server: ChatServer) -> None:
    listener = await staff_ws(staff_server.http_port, LISTENER_TOKEN)
    await listener.request({"type": "listen", "on": True}, "notice")
    seeker = await IrcClient.connect(staff_server.irc_port, "Seeker")
    await seeker.send_lines("TALK")
    joined = await seeker.expect("JOIN")
    room = joined.params[0]
    assert room.startswith("#dm-")
    names = await seeker.expect("353")
    assert names.params[1] == "@" and "+" + listener.name.replace(" ", "_") in names.params[-1]
    matched = await listener.expect("matched")
    assert matched["room"] == room[1:]
    await seeker.send_lines(f"PRIVMSG {room} :thank you for being here")
    said = await listener.expect("message", room=room[1:])
    assert said["text"] == "thank you for being here"
    outsider = await IrcClient.connect(staff_server.irc_port, "Nosy")
    await outsider.send_lines(f"JOIN {room}", "LIST")
    assert (await outsider.expect("473")).params[1] == room
    while (line := await outsider.read()).command != "323":
        assert room not in line.params
    await listener.send({"type": "leave", "room": room[1:]})
    assert (await seeker.expect("PART")).params[0] == room


# ---- history -----------------------------------------------------------------------------------
async def test_chathistory_reads_the_retention_buffer_since_joining(server: ChatServer) -> None:
    tcp = await TextClient.open(server.tcp_port)
    await tcp.send("said before Bob came")
    await tcp_sync(tcp)
    caps = "batch server-time message-tags draft/chathistory"
    irc = await IrcClient.connect(server.irc_port, "Bob", caps=caps)
    for number in range(3):
        await tcp.send(f"line {number}")
    for number in range(3):
        await irc.expect("PRIVMSG", "#lobby", f"line {number}")
    await irc.send_lines("CHATHISTORY LATEST #lobby * 10")
    start = await irc.expect("BATCH")
    assert start.params[1:] == ["chathistory", "#lobby"]
    got = []
    while (line := await irc.read()).command == "PRIVMSG":
        assert line.tags["batch"] == start.params[0][1:]
        got.append(line.params[1])
    assert line.command == "BATCH"
    assert got == ["line 0", "line 1", "line 2"]  # nothing from before Bob came in
    first = (await _history(irc, "LATEST #lobby * 1"))[0]
    assert first.params[1] == "line 2"
    before = await _history(irc, f"BEFORE #lobby msgid={first.tags['msgid']} 5")
    assert [line.params[1] for line in before] == ["line 0", "line 1"]
    await irc.send_lines("CHATHISTORY LATEST #elsewhere * 5")
    assert (await irc.expect("FAIL")).params[:2] == ["CHATHISTORY", "INVALID_TARGET"]


async def _history(irc: IrcClient, query: str) -> list[Line]:
    await irc.send_lines(f"CHATHISTORY {query}")
    await irc.expect("BATCH")
    lines = []
    while (line := await irc.read()).command != "BATCH":
        lines.append(line)
    return lines


async def test_a_client_that_comes_back_gets_what_it_missed(server: ChatServer) -> None:
    tcp = await TextClient.open(server.tcp_port)
    irc = await IrcClient.connect(server.irc_port, register=False)
    key = await irc.register_for_key("Bob")
    await tcp.send("seen before")
    await irc.expect("PRIVMSG", "#lobby", "seen before")
    await irc.until_confirmed()  # the server knows "seen before" was read
    await irc.close()
    await tcp.send("missed one")
    await tcp.send("missed two")
    await tcp_sync(tcp)
    back = await IrcClient.connect(server.irc_port, register=False)
    await back.send_lines(
        f"PASS resume:{key}", "CAP LS 302", "CAP REQ :batch server-time", "NICK x", "USER u 0 * :x"
    )
    await back.send_lines("CAP END")
    assert (await back.expect("001")).params[0] == "Bob"
    batch = await back.expect("BATCH")
    assert batch.params[1:] == ["chathistory", "#lobby"]
    replayed = []
    while (line := await back.read()).command == "PRIVMSG":
        replayed.append(line.params[1])
    assert replayed == ["missed one", "missed two"]
    notice = await back.expect("NOTICE")
    assert "Caught up: 2 messages you missed" in notice.params[1]
    await tcp.send("live again")
    await back.expect("PRIVMSG", "#lobby", "live again")
    lines = await tcp_sync(tcp)
    assert not any("Bob" in line and ("left" in line or "joined" in line) for line in lines)


async def test_after_messages_the_server_pings_to_learn_they_were_read(
    staff_server: ChatServer,
) -> None:
    """One PING after what was written, and no other while it is unanswered. Here for a
    listener signed in with SASL, whose CAP END is the step that ends registration."""
    irc = await IrcClient.connect(staff_server.irc_port, register=False)
    irc.answers_pings = False
    plain = base64.b64encode(f"\0ear\0{LISTENER_TOKEN}".encode()).decode()
    await irc.send_lines("CAP LS 302", "NICK Ear", "USER e 0 * :x", "CAP REQ :sasl")
    await irc.expect(lambda line: line.command == "CAP" and line.params[1] == "ACK")
    await irc.send_lines("AUTHENTICATE PLAIN")
    await irc.expect("AUTHENTICATE")
    await irc.send_lines(f"AUTHENTICATE {plain}")
    await irc.expect("903")
    await irc.send_lines("CAP END")
    await irc.expect("366")
    tcp = await TextClient.open(staff_server.tcp_port)
    await tcp.send("hello")
    await irc.expect("PRIVMSG", "#lobby", "hello")
    ping = await irc.expect(lambda line: line.command in ("PING", "PRIVMSG"))
    assert ping.command == "PING" and ping.source is None
    await tcp.send("again")
    await irc.expect("PRIVMSG", "#lobby", "again")
    assert not [line for line in await irc.sync() if line.command == "PING"]


async def test_what_was_written_to_a_connection_that_died_unnoticed_is_not_lost(
    server: ChatServer,
) -> None:
    """The server goes on writing into a connection whose network has gone until it learns
    so; written is not read. Only what the client confirmed (a PING after it answered) counts,
    so what it never read comes back with the resume (fails when written counts as read)."""
    tcp = await TextClient.open(server.tcp_port)
    irc = await IrcClient.connect(server.irc_port, register=False)
    key = await irc.register_for_key("Bob")
    await tcp.send("read before")
    await irc.expect("PRIVMSG", "#lobby", "read before")
    await irc.until_confirmed()  # answers the server's PING that followed it
    await tcp.send("written, never read")
    await tcp.send("nor this")
    await tcp_sync(tcp)  # written to Bob's socket, which Bob no longer reads
    await irc.close()
    back = await IrcClient.connect(server.irc_port, register=False)
    await back.send_lines(f"PASS resume:{key}", "NICK x", "USER u 0 * :x")
    assert (await back.expect("001")).params[0] == "Bob"
    replayed = []
    while (line := await back.read()).command != "NOTICE" or "Caught up" not in line.params[1]:
        if line.command == "PRIVMSG":
            replayed.append(line.params[1])
    assert replayed == ["written, never read", "nor this"]
    assert "2 messages you missed" in line.params[1]


async def test_coming_back_while_the_dead_connection_is_still_open_replays_what_it_never_read(
    server: ChatServer,
) -> None:
    """Back before the server has noticed the old connection is dead (the usual case after a
    network drop): the replay starts after what that connection confirmed, nothing read
    shown twice, nothing unread lost."""
    tcp = await TextClient.open(server.tcp_port)
    irc = await IrcClient.connect(server.irc_port, register=False)
    key = await irc.register_for_key("Bob")
    for text in ("one", "two"):
        await tcp.send(text)
    await irc.expect("PRIVMSG", "#lobby", "two")
    await irc.until_confirmed()
    await tcp.send("three, never read")
    await tcp_sync(tcp)
    back = await IrcClient.connect(server.irc_port, register=False)  # the old one still open
    await back.send_lines(f"PASS resume:{key}", "NICK x", "USER u 0 * :x")
    assert (await back.expect("001")).params[0] == "Bob"
    replayed = await back.expect("PRIVMSG")
    assert replayed.params == ["#lobby", "three, never read"]
    assert "Caught up: 1 message you missed" in (await back.expect("NOTICE", "Bob")).params[1]
    assert await irc.closed()  # the old connection is let go


async def test_a_room_that_had_said_nothing_yet_is_replayed_too(server: ChatServer) -> None:
    tcp = await TextClient.open(server.tcp_port)
    irc = await IrcClient.connect(server.irc_port, register=False)
    key = await irc.register_for_key("Bob")
    await irc.send_lines("JOIN #side")
    await irc.expect("366")
    await tcp.send("in the lobby")
    await irc.expect("PRIVMSG", "#lobby", "in the lobby")
    await irc.until_confirmed()
    await irc.close()
    await tcp.send("/join side")
    await tcp.send("first words in side")
    await tcp_sync(tcp)
    back = await IrcClient.connect(server.irc_port, register=False)
    await back.send_lines(f"PASS resume:{key}", "NICK x", "USER u 0 * :x")
    replayed = await back.expect("PRIVMSG")
    assert replayed.params == ["#side", "first words in side"]


async def test_a_burst_reaches_each_client_with_its_own_tags_and_resumes_after_it(
    server: ChatServer,
) -> None:
    """Lines that arrive together are one room batch, written once per tag variant and shared
    by every client that asked for the same tags (issue 16); a client that comes back later
    is replayed from after the last of them, nothing twice."""
    plain = await IrcClient.connect(server.irc_port, register=False)
    key = await plain.register_for_key("Bob")
    tagged = await IrcClient.connect(server.irc_port, "Ann", caps="server-time message-tags")
    also_tagged = await IrcClient.connect(server.irc_port, "Cid", caps="message-tags server-time")
    tcp = await TextClient.open(server.tcp_port)
    burst = [f"line {n}" for n in range(8)]
    tcp.writer.write("".join(f"{text}\n" for text in burst).encode())  # one read: one turn
    await tcp_sync(tcp)
    got = {}
    for client in (plain, tagged, also_tagged):
        lines = [line for line in await client.sync() if line.command == "PRIVMSG"]
        assert [line.params for line in lines] == [["#lobby", text] for text in burst]
        got[client] = lines
    assert all(not line.tags for line in got[plain])
    ids = [line.tags["msgid"] for line in got[tagged]]
    assert len(set(ids)) == len(burst) and all(line.tags["time"] for line in got[tagged])
    assert [line.tags["msgid"] for line in got[also_tagged]] == ids
    await plain.until_confirmed()  # the server's PING after the burst, answered
    await plain.close()
    await tcp.send("after the burst")
    await tcp_sync(tcp)
    back = await IrcClient.connect(server.irc_port, register=False)
    await back.send_lines(f"PASS resume:{key}", "NICK x", "USER u 0 * :x")
    await back.expect("001")
    replayed = [line.params[1] for line in await back.sync() if line.command == "PRIVMSG"]
    assert replayed == ["after the burst"]


# ---- flood and slowness ------------------------------------------------------------------------
async def test_a_fast_client_is_slowed_not_cut() -> None:
    server = await start_server(msg_rate=40.0, msg_burst=2.0)
    try:
        irc = await IrcClient.connect(server.irc_port, "Quick")
        tcp = await TextClient.open(server.tcp_port)
        await irc.send_lines(*[f"PRIVMSG #lobby :n{i}" for i in range(30)])
        for i in range(30):
            assert await tcp.expect(lambda s: s.startswith("<Quick>")) == f"<Quick> n{i}"
        lines = await irc.sync()
        assert not [line for line in lines if line.command in ("404", "ERROR")]
    finally:
        await server.stop()


async def test_a_client_that_does_not_read_is_cut_and_nobody_waits() -> None:
    server = await start_server(outbox_limit=64 * 1024)
    loop = asyncio.get_running_loop()
    try:
        sleeper = socket.socket()
        sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sleeper.setblocking(False)
        await loop.sock_connect(sleeper, ("127.0.0.1", server.irc_port))
        await loop.sock_sendall(sleeper, b"NICK Sleepy\r\nUSER s 0 * :x\r\n")
        reader = await IrcClient.connect(server.irc_port, "Reader")
        talker = await TextClient.open(server.tcp_port)
        assert server.chat is not None
        payload = "x" * 400
        for b in range(400):  # up to 8 MB: past the kernel's buffers and our 64 KiB bound
            for i in range(50):
                await talker.send(f"{b}.{i} {payload}")
            for i in range(50):  # the reading client gets every one of them, promptly
                await reader.expect("PRIVMSG", "#lobby", f"{b}.{i} {payload}", timeout=10)
            if server.chat.counters.get("slow_disconnects"):
                break
        assert server.chat.counters.get("slow_disconnects") == 1
        data = b""
        async with asyncio.timeout(10):
            while chunk := await loop.sock_recv(sleeper, 1 << 20):
                data += chunk
        assert data.endswith(b"ERROR :Closing link: too slow: you were not reading fast enough\r\n")
        sleeper.close()
        await talker.send("after")  # the others go on (Sleepy can come back with its key)
        await reader.expect("PRIVMSG", "#lobby", "after")
    finally:
        await server.stop()


# ---- the listener ------------------------------------------------------------------------------
async def test_irc_over_tls(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    server = await start_server(tls_cert=cert, tls_key=key, irc_tls_port=0)
    try:
        assert server.urls["ircs"].startswith("ircs://127.0.0.1:")
        context = ssl.create_default_context(cafile=cert)
        port = server.irc_tls_port
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        client = IrcClient(reader, writer)
        await client.register("Secure")
        assert client.nick == "Secure"
    finally:
        await server.stop()
