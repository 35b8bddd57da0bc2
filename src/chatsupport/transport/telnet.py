"""Telnet on the text port (RFC 854/855): commands taken out of the byte stream, options refused.

telnet is a plain-text client with a little protocol of its own: a byte 0xFF (IAC, never
part of UTF-8 text) starts a command. The server enables no option, so negotiation is
refused politely (RFC 855): `DO x` is answered `WONT x`, `WILL x` is answered `DONT x`, and
`WONT`/`DONT` need no answer (the option is off already; answering could loop). The one
exception is `DO TIMING-MARK` (RFC 860), answered `WILL TIMING-MARK`: telnet sends it after
Ctrl-C and shows nothing more until the answer comes. Subnegotiations (`SB ... SE`) are
skipped; `IAC IAC` is a literal 0xFF byte. Negotiation is read where telnet sends it, before
any text of a line (telnet sends whole lines): 0xFF in the middle of typed text, or before a
byte that is no command, is data, so bytes that are not UTF-8 are still refused as such.

Ctrl-C arrives as `IAC IP` (interrupt process): the person's unfinished line is dropped and
they are told, as are `BRK` and `AO`; `EL` erases the unfinished line quietly, `EC` its last
character, and `AYT` ("are you there?") is answered. Only 0xFF bytes cost anything: plain
input (netcat) passes through untouched, and the parser exists only once one is seen.
"""

from __future__ import annotations

import enum

IAC, DONT, DO, WONT, WILL, SB = 255, 254, 253, 252, 251, 250
SE, NOP, DM, BRK, IP, AO, AYT, EC, EL, GA = 240, 241, 242, 243, 244, 245, 246, 247, 248, 249
TIMING_MARK = 6
SUB_LIMIT = 4096  # a subnegotiation never closed must not swallow the session's input


class Signal(enum.Enum):
    """What a telnet command asks of the line being typed."""

    INTERRUPT = enum.auto()  # IP, BRK, AO: drop the unfinished line, and say so
    ERASE_LINE = enum.auto()  # EL: drop the unfinished line
    ERASE_CHAR = enum.auto()  # EC: drop its last character
    ARE_YOU_THERE = enum.auto()  # AYT: show that the server is alive


_SIGNALS = {
    IP: Signal.INTERRUPT,
    BRK: Signal.INTERRUPT,
    AO: Signal.INTERRUPT,
    EL: Signal.ERASE_LINE,
    EC: Signal.ERASE_CHAR,
    AYT: Signal.ARE_YOU_THERE,
}


_OPENERS = frozenset((WILL, WONT, DO, DONT, SB))  # what starts a negotiation


class _State(enum.Enum):
    DATA = enum.auto()
    COMMAND = enum.auto()  # after IAC
    OPTION = enum.auto()  # after IAC WILL/WONT/DO/DONT
    SUB = enum.auto()  # inside SB ... (until IAC SE)
    SUB_COMMAND = enum.auto()  # IAC inside SB


class Telnet:
    """The telnet commands in one connection's input, parsed across reads."""

    __slots__ = ("skipped", "state", "verb")

    def __init__(self) -> None:
        self.state = _State.DATA
        self.verb = 0
        self.skipped = 0  # bytes of the current subnegotiation

    def feed(self, data: bytes, buffer: bytearray) -> tuple[bytes, list[Signal]]:
        """Append `data`'s text to `buffer`, applying what its commands do to the unfinished
        line there; returns the bytes to answer with and the signals the person gets told of."""
        replies = bytearray()
        signals: list[Signal] = []
        index, end = 0, len(data)
        while index < end:
            if self.state is _State.DATA:  # copy the text up to the next command at once
                found = data.find(IAC, index)
                stop = end if found < 0 else found
                buffer += data[index:stop]
                if found >= 0:
                    self.state = _State.COMMAND
                index = stop + 1
                continue
            byte = data[index]
            index += 1
            if self.state is _State.COMMAND:
                self._command(byte, buffer, signals)
            elif self.state is _State.OPTION:
                replies += _answer(self.verb, byte)
                self.state = _State.DATA
            else:
                self._sub(byte)
        return bytes(replies), signals

    def _command(self, byte: int, buffer: bytearray, signals: list[Signal]) -> None:
        self.state = _State.DATA
        if byte == IAC:
            buffer.append(IAC)  # an escaped 0xFF: a data byte (never valid UTF-8 text)
        elif byte < SE or (byte in _OPENERS and not at_line_start(buffer)):
            # No command: 0xFF in the middle of typed text, where telnet never negotiates
            # (it sends whole lines), is data, and the line is refused as not UTF-8.
            buffer += bytes((IAC, byte))
        elif byte == SB:
            self.state, self.skipped = _State.SUB, 0
        elif byte in _OPENERS:
            self.state, self.verb = _State.OPTION, byte
        elif (signal := _SIGNALS.get(byte)) is not None:
            if signal is Signal.ERASE_CHAR:
                erase_char(buffer)
            elif signal is not Signal.ARE_YOU_THERE:
                erase_line(buffer)
            signals.append(signal)
        # NOP, DM, GA, SE: nothing to do

    def _sub(self, byte: int) -> None:
        self.skipped += 1
        if self.state is _State.SUB_COMMAND:
            # IAC SE ends it; IAC IAC is an escaped 0xFF inside it; anything else is a
            # client's mistake: end the subnegotiation rather than risk a deaf session.
            self.state = _State.SUB if byte == IAC else _State.DATA
        elif byte == IAC:
            self.state = _State.SUB_COMMAND
        elif self.skipped > SUB_LIMIT:
            self.state = _State.DATA


def _answer(verb: int, option: int) -> bytes:
    """Refuse every option (RFC 855); a timing mark is answered at once (RFC 860)."""
    if verb == DO:
        return bytes((IAC, WILL if option == TIMING_MARK else WONT, option))
    if verb == WILL:
        return bytes((IAC, DONT, option))
    return b""  # WONT, DONT: the option is off already


def at_line_start(buffer: bytearray) -> bool:
    """Whether nothing of a line has been typed yet (the buffer is empty or ends a line)."""
    return not buffer or buffer[-1] == 0x0A


def erase_line(buffer: bytearray) -> None:
    """Drop the unfinished line at the end of `buffer` (complete lines stay)."""
    del buffer[buffer.rfind(b"\n") + 1 :]


def erase_char(buffer: bytearray) -> None:
    """Drop the last character of the unfinished line (a whole UTF-8 character)."""
    if at_line_start(buffer):
        return
    end = len(buffer)
    start = end - 1
    while start > 0 and buffer[start] & 0xC0 == 0x80 and end - start < 4:
        start -= 1  # continuation bytes belong to the character that starts before them
    del buffer[start:]
