"""The terminal client: `chatsupport connect [URL]`.

In a terminal it is interactive (`client/app.py`): messages print above an input line that
stays put, time-stamped, wrapped and with your name highlighted (`client/render.py`). A line
without `/` is said to the current room; a line with `/` goes to the server as text too, where
commands run, except `/quit`, which this client handles (as Ctrl-C and Ctrl-D: a goodbye to the
server, then exit 0). With stdin not a terminal it sends each line it reads, prints what
arrives, and exits once stdin ends and the replies have settled, so scripts can use it.

It prints what arrives as the text interface does (`<name> text`, `* name waves`, `-- `,
`!! `, `*** `). When the connection drops it reconnects with backoff and resumes: the
server replays what was missed (each message once: ids below what was seen are dropped),
and a line that was sent but never confirmed is sent again unless the replay shows it
arrived. After a resume one line sums up: messages missed, rooms kept, rooms lost.

Words stay where they were typed: each line is bound to the room that was current when it was
typed (and to who typed it). If that room is gone by the time the line can be sent (the server
restarted, the resume failed, the private chat ended while away), the line is sent nowhere:
the person is told, and gets the words back on the input line to send or clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import secrets
import signal
import sys
import threading
import unicodedata
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..core import events as ev
from ..core.rooms import is_private
from ..core.text import clean
from ..transport.render_text import render

BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # seconds before each reconnect attempt
GIVE_UP_AFTER = 3  # failed attempts before a script (stdin not a terminal) gives up
# What a resume that could not catch up on everything says, by why (`resumed.reason`).
REPLAY_GAPS: dict[str | None, str] = {
    None: "; some older messages are no longer kept",
    "overtaken": "; more came in meanwhile than could wait, so some are not shown",
    "unavailable": "; the rest could not be read just now: shown once the server is back",
}
FILL = "fill"  # the ref of a resume asking again for what a gap lacks
# Byes worth coming back from (with backoff); quit, forgotten, kicked, banned are final.
RECONNECT_AFTER = {"too_slow", "server_shutdown", "unavailable", "too_many_connections"}
SETTLE = 0.5  # seconds of quiet after the last reply before a script's client exits
GOODBYE = 3.0  # seconds to wait for the server's goodbye before closing anyway
_decoder = msgspec.json.Decoder(ev.EventUnion)


class _Words(msgspec.Struct):
    type: str = ""
    text: str = ""
    message: str = ""


_words = msgspec.json.Decoder(_Words)


def unknown_words(raw: str | bytes) -> str | None:
    """The lines to show for a notice or error whose kind or code this client does not know
    (a newer server's word: the vocabulary refuses it when decoding); None for others."""
    try:
        words = _words.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if words.type == "notice" and words.text:
        return "".join(f"-- {line}\n" for line in words.text.split("\n"))
    if words.type == "error" and words.message:
        return "".join(f"!! {line}\n" for line in words.message.split("\n"))
    return None


def printable(text: str) -> str:
    """What a terminal may safely show: no escapes, controls or bidi tricks from the wire."""
    return "".join(c for c in text if c == "\n" or not unicodedata.category(c).startswith("C"))


def ws_url(url: str, resume: bool, client: str = "") -> str:
    """Accepts ws(s):// or http(s)://; `?resume` asks the server to wait for our resume;
    `?client=` is the random id this client holds while it runs (a moderator's ban then
    stops this person, not everyone on their network; it is never written anywhere)."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise InvalidURI(url, "expected ws://host:port/ws")
    asks = (parts.query, f"client={client}" if client else "", "resume=1" if resume else "")
    query = "&".join(q for q in asks if q)
    return urlunsplit((scheme, parts.netloc, parts.path or "/ws", query, ""))


@dataclass(frozen=True)
class Line:
    """A typed line and where it was typed: it goes there or nowhere."""

    text: str
    room: str | None  # the room current when it was typed
    uid: str  # who typed it; "" before the first welcome (then there was no place to bind to)

    @property
    def command(self) -> bool:
        """Run by the server rather than said (`/me` is said; `//x` says `/x`), decided as the
        server decides it."""
        text = self.text
        return text.startswith("/") and not text.startswith("//") and not is_me(text)

    @property
    def said(self) -> str:
        """The text a room shows for it (a replay is recognised by it)."""
        return self.text[3:].strip() if is_me(self.text) else self.text.removeprefix("/")


def is_me(text: str) -> bool:
    return text[:4].lower() == "/me " or text.strip().lower() == "/me"


def secret(text: str) -> bool:
    """A line carrying a token: never shown again, never kept (leading blanks too, to be safe)."""
    return text.lstrip().lower().startswith("/auth")


def shown_line(text: str) -> str:
    return "/auth …" if secret(text) else text


async def _send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionClosed):  # the reader sees it too, and reconnects
        await ws.send(json.dumps(frame))


def place(room: str) -> str:
    return "the private chat" if is_private(room) else f"#{room}"


class View(Protocol):
    """Where the client shows things: a terminal (`app.TerminalView`) or a script's stdout."""

    def line(self, text: str) -> None:
        """One line of the text interface (`-- ...`, `!! ...`), already printable."""

    def message(self, event: ev.Message, tag: str, mention: str) -> None:
        """A message (printable); `tag` marks another room, `mention` is our name (or "")."""

    def refresh(self) -> None:
        """The connection's state changed (`Client.status_text`)."""


class PlainView:
    """A script's output: the text interface's lines, exactly; no status line."""

    def line(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def message(self, event: ev.Message, tag: str, mention: str) -> None:
        for text in (render(event, tag) or "").rstrip("\n").split("\n"):
            self.line(text)

    def refresh(self) -> None:
        pass


@dataclass
class State:
    """Who we are and where we got to: everything a reconnect needs."""

    token: str | None = None
    uid: str = ""
    name: str = ""
    rooms: list[str] = field(default_factory=list)
    current: str | None = None
    seen: dict[str, int] = field(default_factory=dict)  # room -> newest message id seen
    pending: dict[str, Line] = field(default_factory=dict)  # ref -> line not yet confirmed

    def enter(self, room: str, last: int = 0) -> None:
        if room not in self.rooms:
            self.rooms.append(room)
        self.current = room
        self.seen.setdefault(room, last)  # a room we knew keeps its place (resume needs it)

    def exit(self, room: str) -> None:
        if room in self.rooms:
            self.rooms.remove(room)
        self.seen.pop(room, None)
        self.current = self.rooms[-1] if self.rooms else None


class Client:
    def __init__(self, url: str, view: View, interactive: bool) -> None:
        self.url = url
        self.view = view
        self.interactive = interactive
        self.state = State()
        self.lines: deque[Line] = deque()  # typed, not yet sent
        self.held: deque[str] = deque()  # typed for a room that is gone: the person decides
        self.offer: Callable[[], None] = lambda: None  # puts held words on the input line
        self.wake = asyncio.Event()  # a line was added
        self.ready = asyncio.Event()  # welcomed (and resumed): lines may be sent
        self.heard = asyncio.Event()  # a frame arrived (for a script's settling)
        self.ws: ClientConnection | None = None
        self.done = False
        self.reconnect = True
        self.status = 0
        self.refs = 0
        self.failures = 0  # connection attempts failed since the last welcome
        self.resuming = False
        self.renewed = False  # a resume that ended up as a new person
        self.client_id = secrets.token_urlsafe(18)  # while this process runs: bans aim at it
        self.away: list[str] | None = None  # our rooms when the connection dropped
        self.missed: Counter[str] = Counter()  # messages shown while resuming, by room
        # A resume the server could not finish (its shared state was away): the ids we had
        # before the gap, asked for again once it is back (`_fill`), and what we have shown
        # since (not shown twice).
        self.gap: dict[str, int] | None = None
        self.after_gap: set[tuple[str, int]] = set()
        self.filling = False
        self.filled = 0  # messages the asking again brought from before others shown
        self.caught_up = False  # it brought any at all
        self.sending: set[asyncio.Task[None]] = set()
        self.retry_at: float | None = None  # loop time of the next attempt, while waiting
        self.quitting = asyncio.Event()  # Ctrl-C, Ctrl-D, /quit typed, a signal

    def show(self, text: str) -> None:
        for line in printable(text).rstrip("\n").split("\n"):
            self.view.line(line)

    def status_text(self) -> str:
        """The one line shown above the input while not connected (empty when connected)."""
        if self.ready.is_set() or self.done:
            return ""
        n = len(self.lines)
        waiting = f" · {n} line{'s' if n > 1 else ''} waiting to be sent" if n else ""
        if self.retry_at is not None:
            left = max(1, math.ceil(self.retry_at - asyncio.get_running_loop().time()))
            state = f"reconnecting in {left}s (attempt {self.failures})"
        elif self.ws is None:
            state = f"connecting to {urlsplit(self.url).netloc}…"
        else:
            state = "resuming…" if self.resuming else "connected, waiting for the welcome…"
        return f"-- {state}{waiting} · Ctrl-C quits"

    # ---- connection lifecycle --------------------------------------------------------------
    async def run(self) -> int:
        while not self.done:
            try:
                await self._connection()
            except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as error:
                never = self.state.token is None and not self.interactive
                if never and self.failures + 1 >= GIVE_UP_AFTER:  # a script: say so, stop
                    self.show(f"!! cannot connect to {self.url}: {error}")
                    self.done = True
                    return 1
            if self.done or not self.reconnect:
                break
            delay = BACKOFF[min(self.failures, len(BACKOFF) - 1)] * random.uniform(0.8, 1.2)
            self.failures += 1
            await self._pause(delay)
        return self.status

    async def _pause(self, delay: float) -> None:
        """Wait before the next attempt: a script says so once per attempt; a terminal counts
        down on its one status line."""
        if not self.interactive:
            self.show(f"-- reconnecting in {delay:.1f}s...")
            await asyncio.sleep(delay)
            return
        loop = asyncio.get_running_loop()
        self.retry_at = loop.time() + delay
        try:
            for _ in range(math.ceil(delay) + 1):  # a tick per whole second left
                left = self.retry_at - loop.time()
                if left <= 0:
                    break
                self.view.refresh()
                await asyncio.sleep(left - math.floor(left - 1e-3) if left > 1 else left)
        finally:
            self.retry_at = None
            self.view.refresh()

    async def _connection(self) -> None:
        resume = self.state.token is not None
        async with connect(
            ws_url(self.url, resume, self.client_id),
            open_timeout=10,
            max_size=1 << 22,
            close_timeout=2,
        ) as ws:
            self.ws = ws
            self.ready.clear()
            self.view.refresh()
            if resume:
                self.resuming = True
                frame = {"type": "resume", "session": self.state.token, "last": self.state.seen}
                await ws.send(json.dumps(frame))
            writer = asyncio.create_task(self._write(ws))
            try:
                async for raw in ws:
                    self._receive(raw)
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
                self._dropped()
        if not self.done and self.reconnect:
            raise ConnectionError("the server closed the connection")

    def _dropped(self) -> None:
        """The connection is gone: note where we were, for the summary after the resume."""
        self.ws = None
        self.filling = False  # the gap stays: asked for after the next resume
        if self.state.uid and self.away is None:
            self.away = list(self.state.rooms)
        if self.ready.is_set() and self.interactive and not self.done:
            self.show("-- connection lost")
        self.ready.clear()
        self.view.refresh()

    async def _write(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):  # the reader sees it too, and reconnects
            while True:
                await self.ready.wait()
                if not self.lines:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                await self._send_line(ws, self.lines.popleft())

    async def _send_line(self, ws: ClientConnection, line: Line) -> None:
        if line.text.strip().lower() == "/quit":
            self.done = True
            await ws.send(json.dumps({"type": "quit"}))
            return
        if not line.uid:  # typed before we were anyone: it belongs where we first are
            line = Line(line.text, self.state.current, self.state.uid)
        why = self._gone(line)
        if why:
            self._hold(line, why)
            return
        self.refs += 1
        ref = f"t{self.refs}"
        self.state.pending[ref] = line
        frame = {"type": "say", "room": line.room, "text": line.text, "ref": ref}
        await ws.send(json.dumps(frame))

    def _gone(self, line: Line) -> str | None:
        """Why `line` can no longer go where it was typed; None when it still can."""
        state = self.state
        if line.room is not None and line.room not in state.rooms:
            return f"you are no longer in {place(line.room)}"
        # Another person now (the server forgot us): a command, or a line said in no room
        # (which the server would put in the new person's room), is not theirs to run.
        if line.uid != state.uid and (line.command or line.room is None):
            return "it was typed before the reconnect made you a new person"
        return None

    def _hold(self, line: Line, why: str) -> None:
        """Not sent: say so, and keep the words for the person to send or clear."""
        verb, does = ("run", "runs it in") if line.command else ("sent", "sends it to")
        what = shown_line(line.text)
        if secret(line.text):  # a token is never shown again nor kept
            self.show(f"!! Not {verb}: {what} ({why}); type it again if needed.")
        elif not self.interactive:  # a script's output is where the words are kept
            self.show(f"!! Not {verb} ({why}): {what}")
        else:
            short = what if len(what) <= 40 else what[:39] + "…"
            where = f" {does} {place(self.state.current)}" if self.state.current else ""
            self.show(
                f"!! Not {verb}: “{short}”: {why}. Kept for you on the input line: "
                f"Enter{where or ' sends it'}, Ctrl-U clears it."
            )
            self.held.append(line.text)
            self.offer()

    async def stop(self, connection: asyncio.Task[int]) -> None:
        """Quit: when connected, say goodbye (the server then forgets us at once rather than
        keeping us visible for a minute) and wait for its answer, bounded; then stop."""
        self.reconnect = False
        ws, ready = self.ws, self.ready.is_set()
        if ws is not None and not self.done:
            if ready:  # after what was typed before (the writer sends in order)
                self.lines.append(Line("/quit", None, self.state.uid))
                self.wake.set()
            else:  # resuming: what waits stays unsent (told below)
                self.done = True
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps({"type": "quit"}))
            await asyncio.wait({connection}, timeout=GOODBYE)
        self.done = True
        if not connection.done():
            connection.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
            await connection
        for line in self.lines:  # typed while disconnected: shown, so they can be copied
            if line.text.strip().lower() != "/quit":
                self.show(f"-- not sent: {shown_line(line.text)}")
        self.view.refresh()

    def submit(self, line: str) -> None:
        """A line typed (or read): sent now, or as soon as we are connected again, to the
        room current now (never to whichever room is current then)."""
        if line.strip():
            self.lines.append(Line(line, self.state.current, self.state.uid))
            self.wake.set()
            self.view.refresh()  # "N lines waiting" while not connected

    # ---- frames ----------------------------------------------------------------------------
    def _receive(self, raw: str | bytes) -> None:
        self.heard.set()
        try:
            event = _decoder.decode(raw)
        except msgspec.ValidationError:
            if (words := unknown_words(raw)) is not None:
                self.show(words)
            return
        except (msgspec.DecodeError, UnicodeDecodeError):
            return  # a frame this client does not know: newer server, nothing to show
        if event.ref is not None:
            self.state.pending.pop(event.ref, None)
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
        elif (text := render(event)) is not None:  # none for `typing`: not for a terminal
            self.show(text)

    def _welcome(self, event: ev.Event) -> None:
        assert isinstance(event, ev.Welcome)
        state = self.state
        same = event.uid == state.uid
        if state.uid and not same:  # the server no longer knew us (restarted, or too late)
            self.show(f"-- could not resume; you are now {event.name}")
            state.seen.clear()
            self.renewed = True
        state.token, state.uid, state.name = event.session, event.uid, event.name
        self.failures = 0
        state.rooms, state.current = list(event.rooms), event.room or None
        if not same:
            self.show(render(event) or "")
        if not self.resuming:
            self.ready.set()
        self.view.refresh()

    def _joined(self, event: ev.Event) -> None:
        assert isinstance(event, ev.Joined)
        self.state.enter(event.room, event.last or 0)
        if not self.resuming:  # after a reconnect the rooms are simply still ours
            self.show(render(event) or "")

    def _left(self, event: ev.Event) -> None:
        assert isinstance(event, ev.Left | ev.Ended)
        self.state.exit(event.room)
        self.show(render(event) or "")

    def _matched(self, event: ev.Event) -> None:
        assert isinstance(event, ev.Matched)
        self.state.enter(event.room)
        self.show(render(event) or "")

    def _message(self, event: ev.Event) -> None:
        assert isinstance(event, ev.Message)
        state = self.state
        if event.id > state.seen.get(event.room, 0):
            state.seen[event.room] = event.id
            if self.gap is not None:
                self.after_gap.add((event.room, event.id))
        elif self._lacked(event):  # older than what came since: say where it belongs
            if not self.filled:
                self.show("-- earlier, while you were away (it could not be read then):")
            self.filled += 1
        else:
            return  # already shown (a replay overlapping what arrived live)
        if self.filling:
            self.caught_up = True
        if self.resuming:
            self.missed[event.room] += 1
            if event.uid == state.uid:
                self._confirm(event.text)
        tag = f"[#{event.room}] " if event.room != state.current else ""
        mention = state.name if event.uid != state.uid else ""
        shown = msgspec.structs.replace(
            event, name=printable(event.name), text=printable(event.text).rstrip("\n")
        )
        self.view.message(shown, tag, mention)

    def _confirm(self, text: str) -> None:
        """A replayed message of ours: the line that became it did arrive; don't resend it."""
        for ref, line in list(self.state.pending.items()):
            if not line.command and clean(line.said) == text:
                del self.state.pending[ref]
                return

    def _resumed(self, event: ev.Event) -> None:
        assert isinstance(event, ev.Resumed)
        if event.ref == FILL:
            self._filled(event)
            return
        self.resuming = False
        self.show(self._summary(event))
        if event.reason == "unavailable" and self.gap is None:
            self.gap = dict(self.state.seen)
        elif self.gap is not None and event.complete:
            self._fill()  # a gap from before this reconnect: the server is back
        self.renewed, self.away = False, None
        self.missed.clear()
        unsent = list(self.state.pending.values())
        self.state.pending.clear()
        for line in reversed(unsent):  # back to the front of the queue, in order
            if line.command:
                self.show(f"!! not sure this reached the server: {shown_line(line.text)}")
            else:
                self.lines.appendleft(line)
        self.ready.set()
        self.wake.set()

    # ---- a gap filled once the server is back ---------------------------------------------
    def _fill(self) -> None:
        """Ask again, on this connection, for what came after the ids we had before the gap
        (the server replays it; what we have is skipped, the rest shown with a word)."""
        ws, gap = self.ws, self.gap
        if ws is None or gap is None or self.filling or self.resuming:
            return
        self.filling, self.filled, self.caught_up = True, 0, False
        frame = {"type": "resume", "session": self.state.token, "last": gap, "ref": FILL}
        task = asyncio.get_running_loop().create_task(_send(ws, frame))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    def _lacked(self, event: ev.Message) -> bool:
        """Whether an older message is one the gap lacked (to be shown now, once)."""
        gap, key = self.gap, (event.room, event.id)
        if not self.filling or gap is None or key in self.after_gap:
            return False
        if event.id <= gap.get(event.room, event.id):
            return False
        self.after_gap.add(key)
        return True

    def _filled(self, resumed: ev.Resumed) -> None:
        self.filling = False
        if resumed.reason == "unavailable":
            return  # away again: asked once more when it is back
        if self.caught_up:
            self.show("-- caught up: what could not be read earlier is shown")
        elif resumed.complete:
            self.show("-- caught up: nothing more was missed")
        self.gap = None
        self.after_gap.clear()

    def _summary(self, resumed: ev.Resumed) -> str:
        """After a resume, one line: what was missed, which rooms are still ours, which not."""
        before, now = self.away or [], self.state.rooms
        kept = ", ".join(place(r) for r in before if r in now) or "none of your rooms"
        lost = ", ".join(place(r) for r in before if r not in now)
        gone = f"; no longer in {lost}" if lost else ""
        if self.renewed:
            return (
                f"-- not resumed: you are in {place(self.state.current or 'lobby')}{gone}; "
                "what was said while you were away is not shown"
            )
        total = sum(self.missed.values())
        where = ", ".join(f"{n} in {place(r)}" for r, n in self.missed.items())
        missed = f"{total} missed: {where}, shown above" if total else "0 missed"
        older = "" if resumed.complete else REPLAY_GAPS.get(resumed.reason, REPLAY_GAPS[None])
        return f"-- resumed ({missed}); still in {kept}{gone}{older}"

    def _notice(self, event: ev.Event) -> None:
        assert isinstance(event, ev.Notice)
        if event.kind == "nick" and event.name:
            self.state.name = event.name
        self.show(render(event) or "")
        if event.kind == "available":
            self._fill()

    def _bye(self, event: ev.Event) -> None:
        assert isinstance(event, ev.Bye)
        self.show(render(event) or "")
        self.ready.clear()  # nothing more goes out; the goodbye says why the connection ends
        if event.reason not in RECONNECT_AFTER or self.done:
            self.done, self.reconnect = True, False

    # ---- a script's end --------------------------------------------------------------------
    async def settle(self) -> None:
        """stdin ended: wait until every line was sent and answered and the output is
        quiet for a moment (all bounded); then the script quits."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while self.lines or self.state.pending or not self.ready.is_set():
                    if self.done:
                        return
                    await asyncio.sleep(0.05)
                while True:
                    self.heard.clear()
                    try:
                        await asyncio.wait_for(self.heard.wait(), SETTLE)
                    except TimeoutError:
                        break


HANDLERS: dict[type[ev.Event], Callable[[Client, ev.Event], None]] = {
    ev.Welcome: Client._welcome,
    ev.Joined: Client._joined,
    ev.Left: Client._left,
    ev.Ended: Client._left,
    ev.Matched: Client._matched,
    ev.Message: Client._message,
    ev.Resumed: Client._resumed,
    ev.Notice: Client._notice,
    ev.Bye: Client._bye,
}


# ---- the two ways to run ---------------------------------------------------------------------
async def until_done(client: Client, *others: asyncio.Task[Any]) -> int:
    """Run `client` until it ends by itself (a final goodbye), one of `others` ends, or the
    person asks to quit (Ctrl-C, /quit, SIGINT, SIGTERM, SIGHUP): then it says goodbye."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, client.quitting.set)
    connection = asyncio.create_task(client.run())
    quitting = asyncio.create_task(client.quitting.wait())
    try:
        await asyncio.wait({connection, quitting, *others}, return_when=asyncio.FIRST_COMPLETED)
        if not connection.done():
            await client.stop(connection)
        return 0 if connection.cancelled() else connection.result()
    finally:
        quitting.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)


async def _script(url: str) -> int:
    client = Client(url, PlainView(), interactive=False)
    loop = asyncio.get_running_loop()
    stdin_done = asyncio.Event()

    def read_stdin() -> None:  # a thread: stdin may be a file, a pipe or /dev/null
        for line in sys.stdin:
            loop.call_soon_threadsafe(client.submit, line.rstrip("\r\n"))
        loop.call_soon_threadsafe(stdin_done.set)

    async def to_the_end() -> None:
        await stdin_done.wait()
        await client.settle()  # every line answered; then goodbye, so others see us leave

    threading.Thread(target=read_stdin, daemon=True).start()
    ending = asyncio.create_task(to_the_end())
    try:
        return await until_done(client, ending)
    finally:
        ending.cancel()


def run(url: str) -> int:
    """`chatsupport connect URL`; the exit status."""
    try:
        ws_url(url, False)
    except InvalidURI as error:
        print(f"chatsupport: {error}", file=sys.stderr)
        return 2
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if interactive:
        from .app import interactive as main
    else:
        main = _script
    try:
        return asyncio.run(main(url))
    except KeyboardInterrupt:  # only before the loop could take signals over
        return 130
