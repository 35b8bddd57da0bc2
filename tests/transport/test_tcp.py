"""The plain-text TCP interface, black-box over real sockets (CONTRACT §1, §3, §6)."""

from __future__ import annotations

import asyncio
import signal
import socket
import struct

import pytest

from chatsupport import ChatServer

from ..helpers import ServerProcess, TextClient, WsClient, eventually, start_server


async def test_message_reaches_every_other_peer_not_the_sender(server: ChatServer) -> None:
    a, b, c = [await TextClient.open(server.tcp_port) for _ in range(3)]
    await a.send("hello everyone")
    for peer in (b, c):
        assert await peer.expect(lambda s: "hello everyone" in s) == f"<{a.name}> hello everyone"
    await a.send("/who")  # a sync point: anything echoed to a would arrive before this reply
    lines = [await a.line()]
    while not lines[-1].startswith("-- in #lobby"):
        lines.append(await a.line())
    assert not any("hello everyone" in line for line in lines)


async def test_rooms_are_isolated(server: ChatServer) -> None:
    a, b, c = [await TextClient.open(server.tcp_port) for _ in range(3)]
    await a.send("/join quiet-corner")
    await a.expect(lambda s: s.startswith("-- you are in #quiet-corner"))
    await b.send("/join quiet-corner")
    await b.expect(lambda s: s.startswith("-- you are in #quiet-corner"))
    await a.send("just us here")
    assert await b.expect(lambda s: "just us" in s) == f"<{a.name}> just us here"
    await c.send("/who quiet-corner")
    await c.expect(lambda s: s.startswith("-- in #quiet-corner (2)"))
    assert not any("just us" in line for line in await c.until_barrier())


async def test_30_peers_20_messages_everyone_gets_all_in_one_order(server: ChatServer) -> None:
    peers = [await TextClient.open(server.tcp_port) for _ in range(30)]
    # Read every join notice (each was sent before the last peer's welcome), so only chat
    # lines follow.
    for peer in peers:
        await peer.until_barrier()

    async def talk(index: int, peer: TextClient) -> None:
        for n in range(20):
            await peer.send(f"m {index} {n}")

    async def collect(peer: TextClient) -> list[str]:
        got: list[str] = []
        while len(got) < 29 * 20:
            line = await peer.line(timeout=20)
            if line.startswith("<"):
                got.append(line.split("> ", 1)[1])
        return got

    collectors = [asyncio.create_task(collect(p)) for p in peers]
    await asyncio.gather(*(talk(i, p) for i, p in enumerate(peers)))
    received = await asyncio.gather(*collectors)
    reference = [m for m in received[0]]
    everything = {f"m {i} {n}" for i in range(30) for n in range(20)}
    for index, got in enumerate(received):
        assert len(got) == 580 and len(set(got)) == 580
        assert set(got) == everything - {f"m {index} {n}" for n in range(20)}
        # Same order: restricted to common messages, every peer saw one sequence.
        common = [m for m in reference if m in set(got)]
        assert [m for m in got if m in set(reference)] == common
        for sender in range(30):  # and each sender's own order is kept
            own = [m for m in got if m.startswith(f"m {sender} ")]
            assert own == sorted(own, key=lambda m: int(m.split()[2]))


async def test_slow_reader_is_disconnected_and_nobody_waits() -> None:
    server = await start_server(outbox_limit=64 * 1024, msg_rate=1e6, msg_burst=1e6)
    loop = asyncio.get_running_loop()
    try:
        sleeper = socket.socket()
        sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sleeper.setblocking(False)
        await loop.sock_connect(sleeper, ("127.0.0.1", server.tcp_port))
        talker, listener = [await TextClient.open(server.tcp_port) for _ in range(2)]
        await listener.until_barrier()
        assert server.chat is not None
        payload = "x" * 1000
        for b in range(200):  # up to 10 MB: past the kernel's buffers and our 64 KiB bound
            for i in range(50):
                await talker.send(f"{b}.{i} {payload}")
            for i in range(50):  # the reading peer gets every one of them, promptly
                line = await listener.expect(lambda s: s.endswith(payload), timeout=10)
                assert line == f"<{talker.name}> {b}.{i} {payload}"
            if server.chat.counters.get("slow_disconnects"):
                break
        # The peer that never read was cut off, with a reason, once its backlog passed the bound.
        assert server.chat.counters.get("slow_disconnects") == 1
        data = b""
        async with asyncio.timeout(10):
            while chunk := await loop.sock_recv(sleeper, 1 << 20):
                data += chunk
        assert data.endswith(b"*** goodbye (too slow: you were not reading fast enough)\n")
        sleeper.close()
        await talker.send("/who")
        assert (await talker.expect(lambda s: s.startswith("-- in"))).startswith("-- in #lobby (2)")
    finally:
        await server.stop()


async def test_peer_reset_mid_line_harms_nobody(server: ChatServer) -> None:
    a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
    rude = socket.create_connection(("127.0.0.1", server.tcp_port))
    rude.sendall("half a line with ünï".encode()[:-1])
    rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    rude.close()  # RST
    await a.send("still here?")
    assert await b.expect(lambda s: "still here" in s) == f"<{a.name}> still here?"
    assert await eventually(lambda: len(server.peers) == 2, timeout=3.0)


async def test_long_line_refused_and_connection_goes_on(server: ChatServer) -> None:
    a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
    await a.send("y" * 5000)
    assert "longer than 4096 bytes" in await a.expect(lambda s: s.startswith("!!"))
    await a.send("short one")
    assert await b.expect(lambda s: "one" in s) == f"<{a.name}> short one"


async def test_invalid_utf8_refused_and_connection_goes_on(server: ChatServer) -> None:
    a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
    await a.send(b"bad \xff\xfe bytes\n")
    assert "not valid UTF-8" in await a.expect(lambda s: s.startswith("!!"))
    await a.send("good bytes")
    assert await b.expect(lambda s: "bytes" in s) == f"<{a.name}> good bytes"


async def test_escapes_controls_and_bidi_are_removed(server: ChatServer) -> None:
    a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
    await a.send("\x1b[2J\x1b[31mred\x1b[0m \x07bell \u202eevil\u202c \x1b]0;title\x07ok\x08")
    line = await b.expect(lambda s: s.startswith(f"<{a.name}>"))
    assert line == f"<{a.name}> red bell evil ok"
    assert not any(ord(ch) < 32 or ch in "\u202e\u202c\x7f" for ch in line)


async def test_multiline_message_cannot_forge_a_line(server: ChatServer) -> None:
    tcp = await TextClient.open(server.tcp_port)
    ws = await WsClient.open(server.http_port)
    await tcp.until_barrier()
    await ws.send(
        {
            "type": "say",
            "room": "lobby",
            "text": "hi\n<Gentle Fox> give me your password\r\n*** Server: trust him",
        }
    )
    lines = [await tcp.line() for _ in range(3)]
    assert all(line.startswith(f"<{ws.name}> ") for line in lines), lines
    # From the text side, a carriage return cannot start a fake line either.
    await tcp.send("hello\r<Admin> fake")
    frame = await ws.expect(
        "message", uid=next(iter(uid for uid, s in server.peers.items() if s.name == tcp.name))
    )
    assert frame["text"] == "hello<Admin> fake"


async def test_line_sent_byte_by_byte_is_the_same(server: ChatServer) -> None:
    a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
    for byte in "café ☕ 你好\n".encode():
        await a.send(bytes([byte]))
        await asyncio.sleep(0.002)
    assert await b.expect(lambda s: s.startswith(f"<{a.name}>")) == f"<{a.name}> café ☕ 你好"


async def test_64k_without_newline_ends_the_connection(server: ChatServer) -> None:
    a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
    await a.send(b"z" * 70000)
    assert "64 KiB" in await a.expect(lambda s: s.startswith("!!"))
    assert await a.closed()
    await b.send("/who")  # the other peer and the room go on; only the flooder left
    assert await b.expect(lambda s: s.startswith("-- in #lobby")) == f"-- in #lobby (1): {b.name}"


async def test_the_partial_line_message_quotes_the_configured_limit() -> None:
    server = await start_server(max_partial_line=8192)
    try:
        a = await TextClient.open(server.tcp_port)
        await a.send(b"z" * 9000)
        line = await a.expect(lambda s: s.startswith("!!"))
        assert line == "!! no end of line after 8 KiB: closing the connection"
        assert await a.closed()
    finally:
        await server.stop()


@pytest.mark.parametrize("name", ["Admin", "m0derator", "SYSTEM", "Chat Support", "Server 2"])
async def test_reserved_names_are_refused(server: ChatServer, name: str) -> None:
    a = await TextClient.open(server.tcp_port)
    await a.send(f"/nick {name}")
    assert "reserved" in await a.expect(lambda s: s.startswith("!!"))


async def test_lookalike_of_another_persons_name_is_refused(server: ChatServer) -> None:
    a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
    await a.send("/nick Calm Heron")
    await a.expect("-- you are now Calm Heron")
    for fake in ("calm heron", "CaIm Heron", "Calm Her0n", "Calm\u200b Heron", "Саlm Heron"):
        await b.send(f"/nick {fake}")
        refusal = await b.expect(lambda s: s.startswith("!!"))
        assert "taken" in refusal or "alphabets" in refusal, (fake, refusal)


async def test_pasting_30_lines_is_slowed_not_lost() -> None:
    server = await start_server(msg_rate=20.0, msg_burst=5.0)
    try:
        a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
        await a.send("".join(f"pasted line {i}\n" for i in range(30)).encode())
        got = [await b.expect(lambda s: "pasted line" in s) for _ in range(30)]
        assert got == [f"<{a.name}> pasted line {i}" for i in range(30)]
        assert not any(line.startswith("!!") for line in await a.until_barrier())
    finally:
        await server.stop()


async def test_http_and_tls_bytes_get_one_line_then_close(server: ChatServer) -> None:
    for probe, word in (
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"web page"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"not TLS"),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port)
        writer.write(probe)
        data = await asyncio.wait_for(reader.read(), 5)
        assert data.startswith(b"!! ") and word in data and data.count(b"\n") == 1
        writer.close()


async def test_broadcast_and_peers_registry(server: ChatServer) -> None:
    a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
    assert {s.name for s in server.peers.values()} == {a.name, b.name}
    with pytest.raises(TypeError):
        server.peers["x"] = server.peers[next(iter(server.peers))]  # type: ignore[index]
    server.broadcast("maintenance in 5 minutes")
    for peer in (a, b):
        assert await peer.expect(lambda s: s.startswith("***")) == "*** maintenance in 5 minutes"


async def test_stop_closes_every_connection_and_the_port() -> None:
    server = await start_server()
    port = server.tcp_port
    peers = [await TextClient.open(port) for _ in range(3)]
    await server.stop()
    for peer in peers:
        assert await peer.closed()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_quit_says_goodbye(server: ChatServer) -> None:
    a, b = [await TextClient.open(server.tcp_port) for _ in range(2)]
    await a.send("/quit")
    assert (await a.expect(lambda s: s.startswith("***"))).startswith("*** goodbye")
    assert await a.closed()
    assert (await b.expect(lambda s: "left" in s)) == f"-- {a.name} left #lobby (1 here)"


def test_sigterm_says_goodbye_and_exits_0() -> None:
    proc = ServerProcess("--tcp-port", "0", "--http-port", "0").start()
    try:
        with socket.create_connection(("127.0.0.1", proc.port("tcp")), timeout=5) as sock:
            sock.recv(4096)
            assert proc.signal(signal.SIGTERM) == 0
            rest = b""
            while chunk := sock.recv(4096):
                rest += chunk
        assert b"goodbye (server shutdown)" in rest
    finally:
        _, err = proc.stop()
    assert "127.0.0.1" not in err  # privacy: no addresses in the log


def test_sigint_exits_0() -> None:
    proc = ServerProcess("--tcp-port", "0", "--http-port", "0").start()
    try:
        assert proc.signal(signal.SIGINT) == 0
    finally:
        proc.stop()


async def test_crowded_room_does_not_announce_comings_and_goings() -> None:
    server = await start_server(presence_limit=3)
    try:
        first = await TextClient.open(server.tcp_port)
        second = await TextClient.open(server.tcp_port)  # 2 here: announced
        assert (
            await first.expect(lambda s: "joined" in s)
            == f"-- {second.name} joined #lobby (2 here)"
        )
        others = [await TextClient.open(server.tcp_port) for _ in range(3)]  # 3, 4, 5 here
        await first.send("/who")
        lines = []
        while not (line := await first.line()).startswith("-- in #lobby"):
            lines.append(line)
        assert lines == [f"-- {others[0].name} joined #lobby (3 here)"]
        assert line.startswith("-- in #lobby (5)")
    finally:
        await server.stop()
