"""Client connections of the load generator: one asyncio Protocol per wire format.

Every peer counts the benchmark messages it receives (``delivered()``). It has
two modes:

- parse mode (``on_text`` set): each benchmark message is cut out and handed to
  ``on_text(text, now_ns)``, with one clock reading per ``data_received`` call;
  used while synchronising, by designated receivers and for latency.
- count mode (``count_only()``): messages are counted with as little Python as
  possible (a ``bytes.count`` for lines and IRC; for WebSocket a ``bytes.count``
  of the benchmark mark over each read plus a walk over frame headers that slices
  nothing; a byte total for RESP pushes of fixed size). Used by the bulk of the receivers
  in the fan-out scenario, so that the generator is not the bottleneck.

A peer never blocks: ``say`` writes to the transport and returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final, cast

import wire

OnText = Callable[[bytes, int], None]
PUSH: Final = b"*3\r\n$7\r\nmessage\r\n"
PRIVMSG: Final = b" PRIVMSG #"  # what marks a chat line from an IRC server
LT: Final = 0x3C  # "<", first byte of a chat line on the TCP interface
NL: Final = 0x0A


class Peer(asyncio.Protocol):
    """What all wire formats share: readiness, counters and mode switching."""

    def __init__(self, room: bytes, *, publisher: bool = False) -> None:
        self.room = room
        self.publisher = publisher
        self.transport = cast(asyncio.Transport, None)
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.close_reason = ""
        self.count = 0
        self.nbytes = 0
        self.reads = 0
        self.on_text: OnText | None = None
        self.probe = -1

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.start()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.close_reason:
            self.close_reason = f"lost: {exc}" if exc else "closed by server"
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(self.close_reason))

    # -- what scenarios use ----------------------------------------------------

    def start(self) -> None:
        """Send whatever the wire format needs on connect."""

    def say(self, text: bytes) -> None:
        raise NotImplementedError

    def join(self, room: bytes) -> None:
        """Move to ``room`` after ``ready`` (formats that choose the room on connect skip this)."""

    def delivered(self) -> int:
        return self.count

    def count_only(self) -> None:
        """Switch to count mode: stop parsing, keep counting."""
        self.on_text = None

    def watch_probes(self) -> None:
        """Parse mode, remembering the newest probe seen (for the room barrier)."""
        self.on_text = self._seen

    def _seen(self, text: bytes, now: int) -> None:
        key = wire.parse_probe(text)
        if key is not None and key > self.probe:
            self.probe = key

    def close(self) -> None:
        self.close_reason = self.close_reason or "closed by us"
        if self.transport is not None:
            self.transport.abort()

    def _ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)


class LinePeer(Peer):
    """Plain-text TCP: chat lines start with ``<``; ``--``/``***``/``!!`` lines are info."""

    def __init__(self, room: bytes, *, publisher: bool = False) -> None:
        super().__init__(room, publisher=publisher)
        self.buf = b""
        self.at_line_start = True

    def say(self, text: bytes) -> None:
        self.transport.write(text + b"\n")

    def join(self, room: bytes) -> None:
        self.room = room
        self.transport.write(b"/join " + room + b"\n")

    def count_only(self) -> None:
        super().count_only()
        if self.buf[:1] == b"<":
            self.count += 1
        self.at_line_start = not self.buf
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.nbytes += len(data)
        self.reads += 1
        on_text = self.on_text
        if on_text is None and self.ready.done():
            n = data.count(b"\n<")
            if self.at_line_start and data[0] == LT:
                n += 1
            self.count += n
            self.at_line_start = data[-1] == NL
            return
        now = time.perf_counter_ns()
        lines = (self.buf + data).split(b"\n")
        self.buf = lines.pop()
        if lines:
            self._ready()
        for line in lines:
            if line[:1] == b"<":
                self.count += 1
                if on_text is not None:
                    on_text(line, now)


class WsPeer(Peer):
    """WebSocket JSON. ``path`` is the request target; ``welcome``: wait for a first frame."""

    def __init__(
        self, room: bytes, port: int, path: str, *, welcome: bool, publisher: bool = False
    ) -> None:
        super().__init__(room, publisher=publisher)
        self.port = port
        self.path = path
        self.welcome = welcome
        self.open = False
        self.buf = bytearray()
        self.say_prefix = b'{"type":"say","room":"' + room + b'","text":"'
        # count mode: frames are skipped, not cut out (see _count)
        self.counting = False
        self.skip = 0  # bytes of the current frame still to come before the next header
        self.cut = b""  # the start of a frame header (or control frame) cut by a read
        self.tail = b""  # the last 2 bytes read: a MARK cut in two is counted once

    def start(self) -> None:
        self.transport.write(wire.ws_request(self.port, self.path))

    def say(self, text: bytes) -> None:
        payload = self.say_prefix + text + b'"}'
        self.transport.write(wire.ws_client_frame(payload))

    def join(self, room: bytes) -> None:
        """ChatSupport: join ``room``, leave the lobby everyone starts in."""
        old, self.room = self.room, room
        self.say_prefix = b'{"type":"say","room":"' + room + b'","text":"'
        self.transport.write(wire.ws_client_frame(b'{"type":"join","room":"' + room + b'"}'))
        if old != room:
            self.transport.write(wire.ws_client_frame(b'{"type":"leave","room":"' + old + b'"}'))

    def data_received(self, data: bytes) -> None:
        self.nbytes += len(data)
        self.reads += 1
        if self.on_text is None and self.open and not self.welcome:
            if not self.counting:
                self._to_count_mode()
            self._count(data)
            return
        if self.counting and not self._to_parse_mode():
            self._count(data)  # mid-frame: back to parsing at the next frame boundary
            return
        buf = self.buf
        buf += data
        pos = 0
        if not self.open:
            pos = self._handshake(buf)
            if pos < 0:
                return
        now = time.perf_counter_ns()
        on_text = self.on_text
        mark = wire.MARK
        n = len(buf)
        while n - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1] & 0x7F
            head = 2
            if length >= 126:
                head = 4 if length == 126 else 10
                if n - pos < head:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + head], "big")
            start = pos + head
            end = start + length
            if end > n:
                break
            pos = end
            if b0 == 0x81:
                if on_text is not None:
                    text = bytes(buf[start:end])
                    if mark in text:
                        self.count += 1
                    on_text(text, now)  # handlers skip what is not theirs
                elif buf.find(mark, start, end) >= 0:
                    self.count += 1
                if self.welcome:
                    self._ready()
            else:
                self._control(b0, bytes(buf[start:end]))
        del buf[:pos]

    def _to_count_mode(self) -> None:
        """What the parse buffer holds is the start of a frame not yet counted."""
        buf = bytes(self.buf)
        self.buf.clear()
        self.count += buf.count(wire.MARK)
        self.cut, self.skip, self.tail = buf, 0, buf[-2:]
        self.counting = True

    def _to_parse_mode(self) -> bool:
        """Back to parsing, possible only at a frame boundary (nothing half read)."""
        if self.skip or self.cut:
            return False
        self.counting = False
        return True

    def _count(self, data: bytes) -> None:
        """Count mode: ``bytes.count`` of the benchmark MARK over the whole read (a text
        frame carries at most one), and a walk over the frame headers only, to answer
        pings and see close frames. No per-frame slicing or decoding."""
        mark = wire.MARK
        n = len(data)
        self.count += data.count(mark)
        tail = self.tail
        if tail:
            self.count += (tail + data[:2]).count(mark)
        self.tail = data[-2:] if n >= 2 else (tail + data)[-2:]
        if self.cut:
            data = self.cut + data
            self.cut = b""
            n = len(data)
        pos = self.skip
        last = n - 4  # a header of up to 4 bytes can be read whole below it
        while pos < last:
            length = data[pos + 1]
            if data[pos] != 0x81 or length > 126:  # control frame or 64-bit length: rare
                break
            if length == 126:
                pos += 4 + (data[pos + 2] << 8 | data[pos + 3])
            else:
                pos += 2 + length
        while pos < n:  # the same walk, for what the fast loop leaves
            if pos + 1 >= n:
                break
            b0 = data[pos]
            length = data[pos + 1]
            if length < 126:
                head = 2
            else:
                head = 4 if length == 126 else 10
                if pos + head > n:
                    break
                length = int.from_bytes(data[pos + 2 : pos + head], "big")
            if b0 != 0x81:  # not a whole text frame: a control frame, wanted whole
                if pos + head + length > n:
                    break
                self._control(b0, data[pos + head : pos + head + length])
            pos += head + length
        if pos < n:
            self.cut, self.skip = data[pos:], 0
        else:
            self.skip = pos - n

    def _handshake(self, buf: bytearray) -> int:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return -1
        status = bytes(buf[: buf.find(b"\r\n")])
        if b" 101 " not in status + b" ":
            self.close_reason = "handshake refused: " + status.decode("latin-1")
            self.transport.abort()
            return -1
        self.open = True
        if not self.welcome:
            self._ready()
        return end + 4

    def _ready(self) -> None:
        super()._ready()
        self.welcome = False  # seen: no need to look again

    def _control(self, b0: int, payload: bytes) -> None:
        opcode = b0 & 0x0F
        if opcode == wire.OP_PING:
            self.transport.write(wire.ws_client_frame(payload, wire.OP_PONG))
        elif opcode == wire.OP_CLOSE:
            self.close_reason = "close frame " + payload[2:].decode("utf-8", "replace")
            self.transport.write(wire.ws_client_frame(payload[:2], wire.OP_CLOSE))
            self.transport.close()
        elif opcode != wire.OP_PONG:
            # Fragmented or binary frames: none of the servers under test send them for
            # messages this small. Say so rather than miscount.
            self.close_reason = f"unexpected frame 0x{b0:02x}"
            self.transport.abort()


class IrcPeer(Peer):
    """IRC (RFC 1459/2812 client side): register with NICK/USER, JOIN ``#room``, PRIVMSG it.

    Ready when the server ends the channel's NAMES list (366). Server PINGs are answered
    in both modes, so a long run is never cut for a missed PONG.
    """

    serial = 0  # unique nicks across every peer of the process

    def __init__(self, room: bytes, *, publisher: bool = False) -> None:
        super().__init__(room, publisher=publisher)
        IrcPeer.serial += 1
        self.nick = b"b%d" % IrcPeer.serial
        self.buf = b""
        self.at_line_start = True
        self.registered = False
        self.say_prefix = b"PRIVMSG #" + room + b" :"

    def start(self) -> None:
        self.transport.write(b"NICK " + self.nick + b"\r\nUSER " + self.nick + b" 0 * :bench\r\n")

    def say(self, text: bytes) -> None:
        self.transport.write(self.say_prefix + text + b"\r\n")

    def join(self, room: bytes) -> None:
        old, self.room = self.room, room
        self.say_prefix = b"PRIVMSG #" + room + b" :"
        self.transport.write(b"JOIN #" + room + b"\r\n")
        if old != room and self.ready.done():
            self.transport.write(b"PART #" + old + b"\r\n")

    def count_only(self) -> None:
        super().count_only()
        self.buf = self.buf[-len(PRIVMSG) + 1 :]

    def data_received(self, data: bytes) -> None:
        self.nbytes += len(data)
        self.reads += 1
        if self.on_text is None and self.ready.done():
            # Count with the previous chunk's last bytes in front: a marker cut in two by
            # the chunk boundary is counted once, one cut-off piece never.
            seen = self.buf + data
            self.count += seen.count(PRIVMSG)
            self.buf = seen[-len(PRIVMSG) + 1 :]
            ping = seen.find(b"PING ")  # "PING :token" or "PING token"
            if ping >= 0 and (ping == 0 or seen[ping - 1] == NL):
                end = seen.find(b"\r\n", ping)
                if end > 0:
                    self.transport.write(b"PONG" + seen[ping + 4 : end] + b"\r\n")
            return
        now = time.perf_counter_ns()
        lines = (self.buf + data).split(b"\r\n")
        self.buf = lines.pop()
        for line in lines:
            self._line(line, now)

    def _line(self, line: bytes, now: int) -> None:
        if line.startswith(b"PING"):
            self.transport.write(b"PONG" + line[4:] + b"\r\n")
            return
        parts = line.split(b" ", 3)
        if len(parts) < 3:
            return
        command = parts[1]
        if command == b"PRIVMSG":
            self.count += 1
            if self.on_text is not None:
                self.on_text(line[line.find(b" :", 1) + 2 :], now)
        elif command == b"001":
            self.registered = True
            self.transport.write(b"JOIN #" + self.room + b"\r\n")
        elif command == b"366":
            self._ready()
        elif command in (b"432", b"433") and self.registered:
            pass  # ChatSupport gave another nick (this one looked like someone else's)
        elif command in (b"432", b"433", b"465", b"ERROR") or line.startswith(b"ERROR"):
            self.close_reason = line.decode("utf-8", "replace")[:200]
            self.transport.abort()


class RespPeer(Peer):
    """Redis pub/sub: receivers SUBSCRIBE the room's channel, publishers PUBLISH to it."""

    def __init__(self, room: bytes, *, publisher: bool = False) -> None:
        super().__init__(room, publisher=publisher)
        self.buf = bytearray()
        self.push_len = wire.resp_push_len(room)
        self.tail = 0  # count mode: bytes of pushes received, all of size push_len

    def start(self) -> None:
        if self.publisher:
            self._ready()
        else:
            self.transport.write(wire.resp_command(b"SUBSCRIBE", self.room))

    def say(self, text: bytes) -> None:
        self.transport.write(wire.resp_command(b"PUBLISH", self.room, text))

    def delivered(self) -> int:
        return self.count + self.tail // self.push_len

    def count_only(self) -> None:
        super().count_only()
        self.tail = len(self.buf)
        self.buf.clear()

    def data_received(self, data: bytes) -> None:
        self.nbytes += len(data)
        self.reads += 1
        if self.publisher:
            return  # integer replies to PUBLISH
        if self.on_text is None and self.ready.done():
            self.tail += len(data)
            return
        now = time.perf_counter_ns()
        buf = self.buf
        buf += data
        pos, size, n = 0, self.push_len, len(buf)
        on_text = self.on_text
        while True:
            end = pos + size
            if end <= n and buf.startswith(PUSH, pos) and buf[end - 2] == 0x0D:
                # fast path: a message push of the one size benchmark texts have
                self.count += 1
                if on_text is not None:
                    on_text(bytes(buf[end - 2 - wire.TEXT_LEN : end - 2]), now)
                pos = end
                continue
            item = parse_push(buf, pos)
            if item is None:
                break
            kind, payload, pos = item
            if kind == b"message":
                self.count += 1
                if on_text is not None:
                    on_text(payload, now)
            elif kind == b"subscribe":
                self._ready()
        del buf[:pos]


def parse_push(buf: bytearray, pos: int) -> tuple[bytes, bytes, int] | None:
    """(kind, last element, end) of one RESP2 array of bulk strings/integers, or None."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    if buf[pos] != 0x2A:  # "*"
        raise ValueError(f"unexpected RESP reply {bytes(buf[pos:end])!r}")
    items: list[bytes] = []
    count = int(buf[pos + 1 : end])
    pos = end + 2
    for _ in range(count):
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        if buf[pos] == 0x3A:  # ":" integer
            items.append(bytes(buf[pos + 1 : end]))
            pos = end + 2
            continue
        size = int(buf[pos + 1 : end])
        if end + 4 + size > len(buf):
            return None
        items.append(bytes(buf[end + 2 : end + 2 + size]))
        pos = end + 4 + size
    return (items[0] if items else b""), (items[-1] if items else b""), pos
