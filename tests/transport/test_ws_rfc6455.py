"""RFC 6455 to the letter, over a real socket with a client written from the RFC alone
(tests/wsframes.py): the Autobahn TestSuite families the issue named (6.x invalid UTF-8,
fragmented and cut at every byte; 7.1.5, a close between fragments) and a sample of the
others (1.x-5.x framing, 9.x limits, 10.x fragmentation). bench/autobahn/ runs the suite
itself; see docs/protocol.md, "Conformance"."""

from __future__ import annotations

import json
import zlib

import pytest

from chatsupport import ChatServer
from chatsupport.transport.ws import HARD_FRAME_LIMIT

from ..helpers import start_server
from ..wsframes import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    Received,
    Wire,
    close_payload,
    deflate,
    frame,
)

# Not UTF-8, each in its own way (Autobahn 6.3-6.21 draw from the same kinds).
NOT_UTF8 = {
    "surrogate": "κόσμε".encode() + b"\xed\xa0\x80edited",
    "overlong": b"\xc0\xaf",
    "past-10ffff": b"\xf4\x90\x80\x80",
    "lone-continuation": b"\x80",
    "cut-short": b"\xe2\x82",
    "0xfe": b"\xfe",
}


def say(text: str, ref: str = "r") -> bytes:
    return json.dumps({"type": "say", "room": "lobby", "text": text, "ref": ref}).encode()


async def opened(server: ChatServer) -> Wire:
    wire = await Wire.open(server.http_port)
    await wire.expect("joined")
    return wire


@pytest.mark.parametrize("junk", NOT_UTF8.values(), ids=NOT_UTF8.keys())
async def test_a_text_message_that_is_not_utf8_fails_the_connection_1007(
    server: ChatServer, junk: bytes
) -> None:
    wire = await opened(server)
    payload = b'{"type": "say", "room": "lobby", "text": "' + junk + b'", "ref": "u"}'
    await wire.send(frame(TEXT, payload))
    code, before = await wire.closed_with()
    assert code == 1007 and before == []  # failed, not answered: nothing was said
    assert await wire.next() is None  # and the server closed the TCP connection


async def test_not_utf8_in_a_fragment_fails_at_once_without_the_rest(server: ChatServer) -> None:
    wire = await opened(server)
    await wire.send(frame(TEXT, b'{"type": "say", "text": "', fin=False))
    await wire.send(frame(CONT, NOT_UTF8["past-10ffff"], fin=False))  # and no final fragment
    assert (await wire.closed_with())[0] == 1007


@pytest.mark.parametrize("valid", [True, False], ids=["valid", "not-utf8"])
async def test_a_message_cut_at_every_byte(server: ChatServer, valid: bool) -> None:
    wire, listener = await opened(server), await opened(server)
    text = "κόσμε 💚 still whole" if valid else "x"
    payload = say(text) if valid else say(text).replace(b'"x"', b'"\xf0\x9f\x92"')
    pieces = [payload[i : i + 1] for i in range(len(payload))]
    for index, piece in enumerate(pieces):
        await wire.send(frame(TEXT if index == 0 else CONT, piece, fin=index == len(pieces) - 1))
    if valid:
        assert (await listener.expect("message"))["text"] == text
        assert (await wire.expect("message", ref="r"))["text"] == text
    else:
        assert (await wire.closed_with())[0] == 1007


async def test_a_close_between_fragments_closes_normally(server: ChatServer) -> None:
    """Autobahn 7.1.5: a fragment, then a close, then the next fragment (ignored)."""
    wire = await opened(server)
    await wire.send(frame(TEXT, say("never finished")[:10], fin=False))
    await wire.send(frame(CLOSE, close_payload(1000)))
    await wire.send(frame(CONT, say("never finished")[10:]))
    code, before = await wire.closed_with()
    assert code == 1000 and not [f for f in before if f["type"] == "error"]


async def test_ping_between_fragments_and_frames_of_every_length_size(server: ChatServer) -> None:
    """Autobahn 1.x (payload lengths 125/126/65535/65536: the three length encodings), 2.x
    (pong echoes the ping's payload) and 5.x (a ping between fragments)."""
    wire = await opened(server)
    await wire.send(frame(TEXT, say("first half", "f")[:12], fin=False))
    await wire.send(frame(PING, b"\x00\xff" * 62))
    await wire.send(frame(CONT, say("first half", "f")[12:]))
    pong = await wire.message()
    assert pong is not None and (pong.opcode, pong.payload) == (PONG, b"\x00\xff" * 62)
    assert (await wire.expect("message", ref="f"))["text"] == "first half"
    for size in (125, 126, 65535, 65536):
        ref = f"s{size}"
        base = len(json.dumps({"type": "ping", "ref": ref, "pad": ""}))
        padded = json.dumps({"type": "ping", "ref": ref, "pad": "p" * (size - base)}).encode()
        assert len(padded) == size
        await wire.send(frame(TEXT, padded))
        answer = await wire.json()
        if size <= server.config.max_frame_bytes:
            assert answer == {"type": "pong", "ref": ref}
        else:  # over the configured limit: refused, and the connection goes on
            assert (answer["type"], answer["code"], answer["ref"]) == ("error", "too_long", ref)
    await wire.send(frame(TEXT, b'{"type": "ping", "ref": "alive"}'))
    assert await wire.json() == {"type": "pong", "ref": "alive"}


PROTOCOL_ERRORS = {
    "rsv1-without-extension": frame(TEXT, b'{"type": "ping"}', rsv1=True),  # 3.1
    "rsv-bits": frame(TEXT, b'{"type": "ping"}', rsv=3),  # 3.3
    "reserved-opcode": frame(0x3, b""),  # 4.1.1
    "reserved-control-opcode": frame(0xB, b""),  # 4.2.1
    "continuation-first": frame(CONT, b"xyz"),  # 5.3
    "fragmented-ping": frame(PING, b"a", fin=False),  # 5.1
    "ping-over-125": frame(PING, b"x" * 126),  # 2.5
}


@pytest.mark.parametrize("data", PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS.keys())
async def test_protocol_errors_fail_the_connection_1002(server: ChatServer, data: bytes) -> None:
    wire = await opened(server)
    await wire.send(data)
    assert (await wire.closed_with())[0] == 1002


async def test_a_binary_message_is_answered_and_the_connection_goes_on(server: ChatServer) -> None:
    wire = await opened(server)
    await wire.send(frame(BINARY, b'{"type": "ping", "ref": "b"}'))
    answer = await wire.json()
    assert (answer["type"], answer["code"], answer["ref"]) == ("error", "bad_request", "b")


async def test_a_message_over_the_hard_limit_closes_1009(server: ChatServer) -> None:
    """Autobahn 9.x: a message larger than the server takes at all is refused with 1009."""
    wire = await opened(server)
    size = max(HARD_FRAME_LIMIT, 2 * server.config.max_frame_bytes) + 1
    await wire.send(frame(TEXT, b"x" * size))
    assert (await wire.closed_with())[0] == 1009


async def test_a_message_fragmented_into_1300_byte_fragments(server: ChatServer) -> None:
    """Autobahn 10.1.1: auto-fragmentation; the message is the same whatever its fragments."""
    wire = await opened(server)
    text = "long words " * 180
    payload = say(text, "long")
    pieces = [payload[i : i + 1300] for i in range(0, len(payload), 1300)]
    for index, piece in enumerate(pieces):
        await wire.send(frame(TEXT if index == 0 else CONT, piece, fin=index == len(pieces) - 1))
    assert (await wire.expect("message", ref="long"))["text"] == text.strip()


# ---- permessage-deflate (RFC 7692) ------------------------------------------------------------
OFFER = "permessage-deflate; client_max_window_bits"
TYPICAL = "hi all, rough day here but glad this place exists. how is everyone doing tonight?"


def inflate_alone(payload: bytes) -> bytes:
    """What a client that keeps no context between messages makes of one message."""
    return zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")


async def next_message_frame(wire: Wire) -> Received:
    for _ in range(100):
        got = await wire.next()
        assert got is not None, "closed"
        if got.opcode == TEXT and b'"message"' in (
            inflate_alone(got.payload) if got.rsv1 else got.payload
        ):
            return got
    raise AssertionError("no message frame")


async def test_deflate_is_agreed_without_context_takeover_either_way(server: ChatServer) -> None:
    wire = await Wire.open(server.http_port, OFFER)
    params = {p.strip() for p in wire.extensions.split(";")}
    assert params == {
        "permessage-deflate",
        "server_no_context_takeover",
        "client_no_context_takeover",
    }


async def test_one_compressed_frame_is_shared_by_every_receiver(server: ChatServer) -> None:
    deflating = [await Wire.open(server.http_port, OFFER) for _ in range(2)]
    plain = await Wire.open(server.http_port)
    for wire in (*deflating, plain):
        await wire.expect("joined")
    sender = await Wire.open(server.http_port)
    await sender.send(frame(TEXT, say(TYPICAL)))
    frames = [await next_message_frame(w) for w in (*deflating, plain)]
    assert frames[0].rsv1 and frames[0].payload == frames[1].payload  # the very same bytes
    assert not frames[2].rsv1
    assert inflate_alone(frames[0].payload) == frames[2].payload  # each message stands alone
    assert frames[0].size < frames[2].size  # and a typical chat message shrinks
    # A second message is compressed on its own too (no context kept between messages).
    await sender.send(frame(TEXT, say(TYPICAL + " again")))
    second = await next_message_frame(deflating[0])
    assert json.loads(inflate_alone(second.payload))["text"] == TYPICAL + " again"


async def test_small_frames_go_uncompressed_and_compressed_ones_are_read(
    server: ChatServer,
) -> None:
    wire, listener = await Wire.open(server.http_port, OFFER), await opened(server)
    await wire.expect("joined")
    await wire.send(frame(TEXT, b'{"type": "ping", "ref": "p"}'))
    for _ in range(100):  # presence of the listener's arrival may come first
        pong = await wire.message()
        assert pong is not None
        if json.loads(pong.payload)["type"] == "pong":
            break
    assert pong is not None and pong.size == 2 + len(
        b'{"type":"pong","ref":"p"}'
    )  # as is: not compressed
    await wire.send(frame(TEXT, deflate(say("sent compressed")), rsv1=True))
    assert (await listener.expect("message"))["text"] == "sent compressed"


async def test_a_zip_bomb_is_refused_with_1009_and_harms_nobody(server: ChatServer) -> None:
    wire, other = await Wire.open(server.http_port, OFFER), await opened(server)
    bomb = deflate(b'{"type": "say", "text": "' + b"0" * (8 << 20) + b'"}')
    assert len(bomb) < 16 << 10  # a few KiB on the wire, 8 MiB once inflated
    await wire.send(frame(TEXT, bomb, rsv1=True))
    assert (await wire.closed_with())[0] == 1009
    await other.send(frame(TEXT, b'{"type": "ping", "ref": "ok"}'))
    # The bomber's person shows as away meanwhile (a dropped connection can resume).
    assert await other.expect("pong", ref="ok") == {"type": "pong", "ref": "ok"}


async def test_deflate_can_be_switched_off() -> None:
    server = await start_server(ws_deflate=False)
    try:
        wire = await Wire.open(server.http_port, OFFER)
        assert wire.extensions == ""
        await wire.expect("joined")
        await wire.send(frame(TEXT, deflate(say("compressed")), rsv1=True))
        assert (await wire.closed_with())[0] == 1002  # RSV1 means nothing without the extension
    finally:
        await server.stop()
