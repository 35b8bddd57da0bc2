"""One IRC connection without I/O: bytes and core events in, lines and actions out.

Like `websockets`' protocol objects, this never touches a socket or the core: the
transport feeds it input (`receive_data`), the core's events (`event`) and history it
fetched (`history`), and carries out what `take` returns, in order:

- `bytes`: lines to write;
- `Open(resume)`: registration is far enough: open the person's session (resuming the
  session whose token came with `PASS resume:TOKEN`);
- `ToCore(request)`: a request for the core, handled after those before it;
- `Fetch(query)`: read the retained history `query` needs, then call `history`;
- `Resume(token, client_fetches)`: a resumed session: ask the core to replay what the
  client missed (from what it was last sent), unless the client catches up itself with
  `draft/chathistory`;
- `Close(reason)`: end the connection after what was written.

The rules it keeps (docs/irc.md has the whole mapping):

- Registration: NICK and USER (and CAP END when the client negotiates capabilities) make
  the client registered. The session is opened once NICK and USER are in (earlier than
  CAP END only for SASL, which needs it); what the core says before the welcome burst
  (001-005, MOTD) is held and follows it. The nick asked for is tried with the core's
  `nick`; if it is refused the person keeps their anonymous name and is told (433 or 432,
  and a NOTICE).
- Every core request carries a `ref` naming the IRC command it came from (`JOIN:lobby`),
  so a reply or an `error` is rendered as that command's numeric, with no state kept.
- Bad input (overlong, not UTF-8, NUL, no command, missing parameters) is answered with a
  numeric or FAIL and the connection goes on; only input without any line end past
  `max_partial` bytes ends it.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from ...core import events as ev
from ...core import requests as rq
from . import numerics as n
from .actions import (
    PASS,
    REG_NICK,
    SASL,
    SASL_CHUNK,
    SASL_MAX,
    Close,
    IrcSettings,
    Open,
    Output,
    Resume,
    ToCore,
    ref,
    ref_kind,
)
from .commands import COMMANDS
from .history import HistoryQuery
from .message import MAX_BODY, MAX_LINE, MAX_TAGS, Line, ParseError, body_length, parse, serialise
from .nicks import to_name, to_nick
from .render import HOST, SERVICE_PREFIX, USER, IrcCodec, irc_time, prefix, text_lines
from .replies import burst, history_reply, render

EARLY_LINES = 32  # commands kept for after the burst; more before it get 451
NOTHING_READ: Mapping[str, int] = MappingProxyType({})  # shared: a dict per idle client is 64 B
PROBE_GAP = 2.0  # seconds between PINGs that confirm what was read (only while messages flow)


class IrcConnection:
    """The state of one IRC client: registration, capabilities, identity, channels."""

    __slots__ = (
        "batches",
        "buffer",
        "caps",
        "channels",
        "clock",
        "closed",
        "codec",
        "confirmed",
        "early",
        "held",
        "last_rename",
        "name",
        "negotiating",
        "nick",
        "nick_refusal",
        "opened",
        "outputs",
        "pass_token",
        "probed_at",
        "probing",
        "registered",
        "replay_room",
        "replaying",
        "resume_token",
        "resumed",
        "resuming",
        "role",
        "sasl",
        "sasl_data",
        "seen",
        "settings",
        "settled",
        "uid",
        "user_given",
        "wanted",
        "welcome",
    )

    def __init__(
        self, settings: IrcSettings, codec: IrcCodec, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.clock = clock
        self.outputs: list[Output] = []
        self.buffer = bytearray()
        self.caps: frozenset[str] = frozenset()  # replaced at CAP REQ (an empty set is 216 B)
        self.negotiating = False  # CAP LS/REQ seen, CAP END not yet
        self.wanted: str | None = None  # the nick asked for at registration
        self.user_given = False
        self.resume_token: str | None = None
        self.pass_token: str | None = None
        self.sasl: str | None = None  # None, "PLAIN" (waiting for data), "sent", "done"
        self.sasl_data = ""
        self.opened = False
        self.registered = False
        self.closed = False
        self.welcome: ev.Welcome | None = None
        self.settled = False  # the nick asked for has been tried
        self.nick_refusal: ev.Error | None = None
        self.resumed = False
        self.held: list[ev.Event] = []  # core events before the welcome burst
        self.early: list[Line] = []  # commands sent before it (a client that does not wait)
        self.uid = ""
        self.name = ""
        self.nick = ""
        self.role: str | None = None  # listener / mod once signed in
        self.channels: set[str] = set()  # rooms as the client sees them
        self.seen: dict[str, int] = {}  # room -> id of the last message written
        # room -> id of the last message the client has surely read: it answered a PING
        # written after it (TCP keeps order). A resume starts after these, as written is not
        # read when the connection has died unnoticed.
        self.confirmed: Mapping[str, int] = NOTHING_READ  # replaced, never changed in place
        self.probing: tuple[str, dict[str, int]] | None = None  # the PING out, and `seen` then
        self.probed_at = -PROBE_GAP  # when the last PING went (the `now` of `probe`)
        self.last_rename: tuple[str, str, str] | None = None  # (uid, old, new): one NICK line
        self.batches = 0
        self.resuming = False  # a resume's replay is under way (until `resumed`)
        self.replaying: str | None = None  # the batch it is in, and for which room
        self.replay_room: str | None = None

    # ---- what the transport calls ----------------------------------------------------------
    def take(self) -> list[Output]:
        outputs, self.outputs = self.outputs, []
        return outputs

    def receive_data(self, data: bytes) -> None:
        if self.closed:
            return
        buffer = self.buffer
        buffer += data
        while (end := buffer.find(b"\n")) >= 0:
            raw = bytes(buffer[:end]).removesuffix(b"\r")
            del buffer[: end + 1]
            self.receive_line(raw)
            if self.closed:
                return
        if len(buffer) > self.settings.max_partial:
            buffer.clear()
            self.fatal("input line too long (no line end)")

    def receive_line(self, raw: bytes) -> None:
        """One line without its line end: refused with a reason, or handled."""
        if not raw.strip():
            return
        tags, body = body_length(raw)
        if len(raw) > MAX_LINE or tags > MAX_TAGS or body > MAX_BODY:
            self.numeric(n.ERR_INPUTTOOLONG, "Input line was too long")
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            command = _command_of(raw.decode("utf-8", "replace"))
            self.send_line("FAIL", command, "INVALID_UTF8", "Message rejected: not valid UTF-8")
            return
        if "\0" in text:
            command = _command_of(text)
            self.numeric(n.ERR_UNKNOWNERROR, command, "Message rejected: it contains a NUL byte")
            return
        try:
            line = parse(text)
        except ParseError:
            self.numeric(n.ERR_UNKNOWNCOMMAND, "*", "Unknown command")
            return
        self.dispatch(line)

    def dispatch(self, line: Line) -> None:
        spec = COMMANDS.get(line.command)
        if spec is None:
            self.numeric(n.ERR_UNKNOWNCOMMAND, line.command, "Unknown command")
        elif spec.registered and not self.registered:
            if self.opened and not self.negotiating and len(self.early) < EARLY_LINES:
                self.early.append(line)  # sent right after USER: handled after the burst
            else:
                self.numeric(n.ERR_NOTREGISTERED, "You have not registered")
        elif len(line.params) < spec.min_params or (
            spec.min_params and not line.params[spec.min_params - 1]
        ):
            self.numeric(n.ERR_NEEDMOREPARAMS, line.command, "Not enough parameters")
        else:
            spec.handler(self, line)

    def event(self, event: ev.Event) -> None:
        """An event from the core (the Sink's `send`)."""
        if self.closed:
            return
        if not self.registered and self._early(event):
            return
        if not self.registered:
            self.held.append(event)
            return
        render(self, event)

    def live_variant(self) -> tuple[bool, bool] | None:
        """The tags (`server-time`, `msgid`) this client's room messages carry when they can be
        the bytes every such client gets; None while they cannot: not registered yet, or a
        resume's replay under way (its messages go in a `chathistory` batch of their own)."""
        if self.closed or not self.registered or self.resuming or self.replaying is not None:
            return None
        return self.message_tags()

    def message_tags(self) -> tuple[bool, bool]:
        """Whether this client's messages carry `time` (server-time) and `msgid` (message-tags)."""
        caps = self.caps
        return "server-time" in caps, "message-tags" in caps

    def wrote(self, room: str, last_id: int) -> None:
        """Messages of `room` up to `last_id` went out as shared bytes: a resume starts after."""
        if last_id > self.seen.get(room, 0):
            self.seen[room] = last_id

    def resumed_from(self, read: dict[str, int]) -> None:
        """A resume replays after `read`: what the last connection was confirmed to have read
        counts as written and read here too, should this one end before confirming more."""
        confirmed = dict(self.confirmed)
        for room, last_id in read.items():
            self.wrote(room, last_id)
            confirmed[room] = max(confirmed.get(room, 0), last_id)
        self.confirmed = confirmed

    def probe_due(self, now: float) -> float | None:
        """Seconds from `now` (a monotonic clock's) until a PING may go to confirm what was
        written since the last one was answered (0: at once); None when nothing needs it or
        one is still unanswered."""
        if self.probing is not None or self.seen == self.confirmed or not self.registered:
            return None
        return max(0.0, self.probed_at + PROBE_GAP - now)

    def probe(self, now: float) -> None:
        """A PING whose answer will say the client read everything written before it."""
        token = f"seen-{int(now * 1000)}"  # one out at a time, PROBE_GAP apart: unique enough
        self.probing = (token, dict(self.seen))
        self.probed_at = now
        self.send_line("PING", token, source="")

    def answered(self, token: str) -> None:
        """A PONG: if it answers the probe, all written before that PING has been read."""
        if self.probing is not None and self.probing[0] == token:
            self.confirmed = self.probing[1]
            self.probing = None

    def history(self, query: HistoryQuery, by_room: dict[str, list[ev.Message]]) -> None:
        """The retained messages a `Fetch` asked for, already cut to what this person may see."""
        history_reply(self, query, by_room)

    # ---- output helpers --------------------------------------------------------------------
    @property
    def me(self) -> str:
        return self.nick or self.wanted or "*"

    @property
    def source(self) -> str:
        return prefix(self.name) if self.name else f"{self.me}!{USER}@{HOST}"

    def send_line(
        self,
        command: str,
        *params: str,
        source: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        origin = self.settings.server if source is None else source  # "": no prefix at all
        line = Line(command, list(params), origin, tags or {})
        self.outputs.append(serialise(line))

    def numeric(self, code: str, *params: str) -> None:
        self.send_line(code, self.me, *params)

    def notice(self, text: str, *, source: str = SERVICE_PREFIX) -> None:
        """A NOTICE to this client, one line per line of `text`, each cut to fit."""
        for piece in text_lines(source, "NOTICE", self.me, text):
            self.send_line("NOTICE", self.me, piece, source=source)

    def core(self, request: rq.Request) -> None:
        self.outputs.append(ToCore(request))

    def fatal(self, reason: str) -> None:
        """End the connection with `ERROR` (the one reply clients treat as final)."""
        if self.closed:
            return
        self.send_line("ERROR", f"Closing link: {reason}", source="")
        self.outputs.append(Close(reason))
        self.closed = True

    def batch_open(self, kind: str, *params: str) -> str | None:
        """Start a batch if the client takes batches; its reference, or None."""
        if "batch" not in self.caps:
            return None
        self.batches += 1
        name = f"b{self.batches}"
        self.send_line("BATCH", "+" + name, kind, *params)
        return name

    def batch_close(self, name: str | None) -> None:
        if name is not None:
            self.send_line("BATCH", "-" + name)

    def time_tags(self, ts: float | None = None) -> dict[str, str]:
        return {"time": irc_time(ts or self.clock())} if "server-time" in self.caps else {}

    # ---- registration ----------------------------------------------------------------------
    def maybe_open(self) -> None:
        """Open the session once NICK and USER are in (during CAP negotiation only for SASL)."""
        if self.opened or self.wanted is None or not self.user_given:
            return
        if self.negotiating and self.sasl != "sent":
            return
        self.opened = True
        self.outputs.append(Open(self.resume_token))

    def maybe_burst(self) -> None:
        """The welcome burst, once the client is registered and the core has said welcome."""
        if self.registered or self.negotiating or not self.opened:
            return
        if self.welcome is None or not self.settled:
            return
        self.registered = True
        burst(self)
        self.welcome = None  # said; nothing more is needed from it (it holds the token)
        held, self.held = self.held, []
        for event in held:
            self.event(event)
        early, self.early = self.early, []
        for line in early:
            self.dispatch(line)

    def _early(self, event: ev.Event) -> bool:
        """Events handled before registration completes (True: handled, not held)."""
        kind, _ = ref_kind(event.ref)
        if isinstance(event, ev.Welcome):
            self._welcomed(event)
            return True
        if isinstance(event, ev.Bye):
            self.fatal(event.reason.replace("_", " "))
            return True
        if kind == SASL and isinstance(event, ev.Notice | ev.Error):
            self.sasl_result(event)
            return True
        if kind == REG_NICK and isinstance(event, ev.Notice | ev.Error):
            if isinstance(event, ev.Notice) and event.name:
                self.name, self.nick = event.name, to_nick(event.name)
            elif isinstance(event, ev.Error):
                self.nick_refusal = event
            self.settled = True
            self.maybe_burst()
            return True
        return False

    def _welcomed(self, welcome: ev.Welcome) -> None:
        self.welcome, self.uid = welcome, welcome.uid
        self.name, self.nick = welcome.name, to_nick(welcome.name)
        self.resumed = self.resume_token is not None and welcome.session == self.resume_token
        if self.resumed:
            self.settled = True  # they come back as who they were
            client_fetches = "draft/chathistory" in self.caps
            self.resuming = True
            self.outputs.append(Resume(welcome.session, client_fetches, tuple(welcome.rooms)))
        elif self.wanted and to_name(self.wanted) != welcome.name:
            self.core(rq.Nick(name=to_name(self.wanted), ref=ref(REG_NICK)))
        else:
            self.settled = True
        if self.pass_token:
            self.core(rq.Auth(token=self.pass_token, ref=ref(PASS)))
        self.maybe_burst()

    def sasl_step(self, data: str) -> None:
        """AUTHENTICATE after `PLAIN`: base64 in chunks of 400, `+` for an empty one."""
        if data != "+":
            self.sasl_data += data
        if len(self.sasl_data) > SASL_MAX:
            self.sasl, self.sasl_data = None, ""
            self.numeric(n.ERR_SASLTOOLONG, "SASL message too long")
            return
        if len(data) == SASL_CHUNK:
            return  # more follows
        payload, self.sasl_data = self.sasl_data, ""
        try:
            fields = base64.b64decode(payload, validate=True).decode().split("\0")
        except (binascii.Error, UnicodeDecodeError):
            fields = []
        if len(fields) != 3 or not fields[2]:
            self.sasl = None
            self.numeric(n.ERR_SASLFAIL, "SASL authentication failed")
            return
        self.sasl = "sent"
        self.core(rq.Auth(token=fields[2], ref=ref(SASL)))
        self.maybe_open()

    def sasl_result(self, event: ev.Notice | ev.Error) -> None:
        if isinstance(event, ev.Error):
            self.sasl = None
            self.numeric(n.ERR_SASLFAIL, "SASL authentication failed")
            return
        self.sasl = "done"
        self.role = event.name
        role = event.name or "staff"
        self.numeric(n.RPL_LOGGEDIN, self.source, role, f"You are now logged in as {role}")
        self.numeric(n.RPL_SASLSUCCESS, "SASL authentication successful")


def _command_of(text: str) -> str:
    """The command word of a line that cannot be parsed further (for FAIL/400 replies)."""
    words = [w for w in text.split(" ") if w]
    while words and words[0][:1] in ("@", ":"):
        words.pop(0)
    word = words[0].upper() if words else "*"
    return word if word.isalnum() and word.isascii() else "*"
