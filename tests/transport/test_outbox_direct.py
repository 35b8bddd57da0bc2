"""The outbox's direct write (issue 16, item 3): a quiet server writes a peer's first bytes
of a turn at once; a second message to the same peer in one turn is queued and coalesced,
and turns the hop back on. Order, backpressure and the slow-peer bound stay as they were.
Real sockets on 127.0.0.1: a server side that owns Outboxes, clients that read (or not)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from chatsupport.transport.outbox import QUIET_TURNS, Flusher, Outbox

LIMIT = 64 * 1024


@dataclass
class Side(asyncio.Protocol):
    """The server's end of one connection: an Outbox on its transport."""

    flusher: Flusher
    limit: int
    overflowed: list[bool] = field(default_factory=list)
    drained: list[bool] = field(default_factory=list)
    outbox: Outbox | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the kernel fills up soon
        self.outbox = Outbox(
            transport, self.flusher, self.limit, lambda: self.overflowed.append(True)
        )

    def pause_writing(self) -> None:
        if self.outbox is not None:
            self.outbox.full()

    def resume_writing(self) -> None:
        if self.outbox is not None:
            self.outbox.resumed()


@dataclass
class Rig:
    flusher: Flusher
    sides: list[Side]
    connect: Callable[[], socket.socket]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    loop = asyncio.get_running_loop()
    flusher = Flusher(loop)
    sides: list[Side] = []

    def made() -> Side:
        side = Side(flusher, LIMIT)
        sides.append(side)
        return side

    server = await loop.create_server(made, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients: list[socket.socket] = []

    def connect() -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: small
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        clients.append(sock)
        return sock

    yield Rig(flusher, sides, connect)
    for sock in clients:
        sock.close()
    server.close()
    await server.wait_closed()


async def side_for(rig: Rig, count: int) -> Outbox:
    for _ in range(200):  # bounded: the accept lands within a few turns
        if len(rig.sides) >= count and rig.sides[count - 1].outbox is not None:
            outbox = rig.sides[count - 1].outbox
            assert outbox is not None
            return outbox
        await asyncio.sleep(0.01)
    raise AssertionError("the server never accepted")


async def read_exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    got = bytearray()
    while len(got) < size:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, size - len(got)), 5)
        assert chunk, "closed early"
        got += chunk
    return bytes(got)


async def a_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_quiet_peer_written_at_once(rig: Rig) -> None:
    sock = rig.connect()
    outbox = await side_for(rig, 1)
    assert rig.flusher.direct
    outbox.push(b"one\n")
    assert not outbox.backlogged and outbox._chunks == []  # handed to the transport already
    assert await read_exactly(sock, 4) == b"one\n"


async def test_second_message_in_a_turn_is_coalesced_then_quiet_again(rig: Rig) -> None:
    sock = rig.connect()
    outbox = await side_for(rig, 1)
    outbox.push(b"a\n")
    outbox.push(b"b\n")  # same turn, same peer: queued, and the server is busy now
    outbox.push(b"c\n")
    assert not rig.flusher.direct
    assert outbox._chunks == [b"b\n", b"c\n"]
    assert await read_exactly(sock, 6) == b"a\nb\nc\n"
    for _ in range(QUIET_TURNS + 1):  # quiet turns (one message each) bring it back
        outbox.push(b"q\n")
        await a_turn()
    assert rig.flusher.direct
    assert await read_exactly(sock, 2 * (QUIET_TURNS + 1)) == b"q\n" * (QUIET_TURNS + 1)


async def test_order_kept_while_the_transport_holds_bytes(rig: Rig) -> None:
    """A reader that lags: the kernel is full, the transport buffers, and every way in
    (at once, queued, coalesced) still delivers in the order pushed."""
    sock = rig.connect()
    outbox = await side_for(rig, 1)
    sent = bytearray()
    n = 0
    for turn in range(60):
        for _ in range(1 if turn % 3 else 4):  # quiet turns and busy ones, mixed
            line = f"{n:06d} {'x' * 200}\n".encode()
            outbox.push(line)
            sent += line
            n += 1
        await a_turn()
    assert outbox._transport.get_write_buffer_size() > 0  # it did lag behind
    assert not rig.sides[0].overflowed
    assert await read_exactly(sock, len(sent)) == bytes(sent)


async def test_slow_reader_dropped_others_unaffected(rig: Rig) -> None:
    slow = rig.connect()
    slow_box = await side_for(rig, 1)
    fast = rig.connect()
    fast_box = await side_for(rig, 2)
    line = b"y" * 1023 + b"\n"
    got = bytearray()
    for _ in range(200):  # bounded: 200 KB is past the 64 KB limit plus the kernel's buffers
        slow_box.push(line)
        fast_box.push(line)
        await a_turn()
        got += await read_exactly(fast, len(line))
        if rig.sides[0].overflowed:
            break
    assert rig.sides[0].overflowed and slow_box.closed
    assert not rig.sides[1].overflowed
    fast_box.push(b"after\n")
    assert got.count(b"\n") == len(got) // len(line)
    assert await read_exactly(fast, 6) == b"after\n"
    slow.close()


async def test_backlogged_and_when_drained_with_direct_writes(rig: Rig) -> None:
    """Paced replay's signals: a peer past the low-water mark is backlogged, and
    `when_drained` fires once it has read enough, whichever way the bytes went."""
    sock = rig.connect()
    outbox = await side_for(rig, 1)
    line = b"z" * 511 + b"\n"
    pushed = 0
    while not outbox.backlogged and pushed < 400:  # bounded
        outbox.push(line)
        pushed += 1
        await a_turn()
    assert outbox.backlogged and not rig.sides[0].overflowed
    fired: list[bool] = []
    outbox.when_drained(lambda: fired.append(True))
    assert not fired
    await read_exactly(sock, pushed * len(line))
    for _ in range(200):  # bounded: the transport says it drained within a few turns
        if fired:
            break
        await asyncio.sleep(0.01)
    assert fired == [True]
