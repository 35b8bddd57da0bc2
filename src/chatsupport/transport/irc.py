"""The IRC interface (docs/irc.md): any IRC client in the same rooms.

Only glue: `ircproto.IrcConnection` is the protocol (no I/O), `driver.Peer` the connection's
life (admit, open, one request at a time, flood pacing, close). This class feeds the first
with bytes and events and carries out what it asks, in order: lines go to the outbox,
requests to the driver's inbox, history reads and a resume's replay are queued between
them, so replies keep the order the client asked in.

Like the text interface it is paced (a client over its budget is read later, never cut
off; a backlog past `tcp_backlog_lines` is refused with the command's numeric). Unlike it,
own messages come back (shown to clients that asked for `echo-message`, and counted as
seen) and a session outlives its connection: a client that reconnects with its
`resume:` key within the retention window comes back as before. The last message id per
room the client is known to have read (it answered a PING written after it; TCP keeps
order) is kept for that (a broker flag under the token's hash, for the retention window:
ids only, never text), so the replay starts where the client was, even when the old
connection died unnoticed while messages were being written into it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import cast

from ..core import events as ev
from ..core import requests as rq
from ..core.batch import Batch
from ..core.chat import hash_token
from ..core.ports import BrokerUnavailable
from .context import Edge, listen
from .driver import Failure, Peer, Work
from .ircproto.actions import RESUME, Close, Fetch, IrcSettings, Open, Resume, ToCore, ref
from .ircproto.connection import IrcConnection
from .ircproto.history import HistoryQuery
from .ircproto.render import IrcCodec

log = logging.getLogger("chatsupport.irc")

REGISTRATION_TIMEOUT = 30.0  # seconds to send NICK and USER (and end CAP) before ERROR
SEEN = "irc-seen"  # broker flag kind: token hash -> {room: last id the client has read}
KEEP_EVERY = 10.0  # seconds between records of that while the client reads (several nodes)
BACKLOG_REFUSAL = "too much input at once; slow down"


@dataclass(slots=True)
class IrcShared:
    """What every IRC connection of a server shares: settings and the message encoder."""

    settings: IrcSettings
    keeps_read_points: bool = False  # nodes share the broker: a client may come back elsewhere
    codec: IrcCodec = field(init=False)
    recording: set[asyncio.Task[bool]] = field(default_factory=set)  # read points being kept

    def __post_init__(self) -> None:
        self.codec = IrcCodec(self.settings.server)


def irc_settings(edge: Edge) -> IrcSettings:
    config = edge.config
    return IrcSettings(
        version=f"chatsupport-{_version()}",
        created=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        max_name=config.max_name,
        max_rooms=config.max_rooms_per_session,
        retention_minutes=max(1, round(config.retention_seconds / 60)),
        max_partial=config.max_partial_line,
    )


class IrcPeer(Peer):
    """One IRC client; the core sees it as a Sink that echoes and can resume."""

    interface = "irc"
    echoes_own = True  # shown with echo-message; always counted as seen
    can_resume = True  # with its `resume:` key
    paced = True
    shares = True  # a room's messages are written once for every client with the same tags
    log = log
    __slots__ = ("conn", "kept_at", "seen", "seen_key", "shared")

    def __init__(self, edge: Edge, shared: IrcShared) -> None:
        super().__init__(edge)
        self.shared = shared
        self.conn = IrcConnection(shared.settings, shared.codec, edge.chat.wallclock)
        self.seen: dict[str, int] = {}  # where a resume's replay starts (from the last connection)
        self.seen_key = ""  # hash of the session's token: where `seen` is kept for a resume
        self.kept_at = -KEEP_EVERY  # loop time the read point was last recorded

    # ---- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.admit(self.attach(transport)):
            return
        self.timer = asyncio.get_running_loop().call_later(REGISTRATION_TIMEOUT, self._late)

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return
        conn = self.conn
        registering, read = not conn.registered, conn.confirmed
        conn.receive_data(data)
        self._pump(ordered=True)
        if registering and conn.registered:
            self._registered()  # CAP END can be the last step
        if conn.confirmed is not read and self.shared.keeps_read_points:
            self._keep_read_point()
        self._confirm()  # a PONG may leave newer messages to confirm
        self.kick()

    # ---- Sink ------------------------------------------------------------------------------
    def send(self, event: ev.Event) -> None:
        outbox = self.outbox
        if outbox is None or outbox.closed:
            return
        if type(event) is ev.Welcome:
            self.seen_key = hash_token(event.session)
        registering = not self.conn.registered
        self.conn.event(event)
        self._pump()
        if registering and self.conn.registered:
            self._registered()
        self._confirm()

    def send_batch(self, batch: Batch) -> None:
        """A room's messages of this turn as one run of bytes, shared by every member whose
        client asked for the same tags; anything else in the batch (a join, a deletion), or
        a client not live yet, takes the events one at a time."""
        outbox = self.outbox
        if outbox is None or outbox.closed:
            return
        conn = self.conn
        variant = conn.live_variant()
        if variant is not None:
            data = batch.cache.get(variant)
            if data is None:
                data = batch.cache[variant] = self._messages(batch, *variant)
            if data:
                last = batch.events[-1][0]
                assert type(last) is ev.Message
                conn.wrote(batch.room, last.id)  # ids grow within a room: the last is the highest
                outbox.put(data)
                if self.timer is None and conn.probing is None:  # per delivery: test first
                    self._confirm()
                return
        for event, *_ in batch.events:
            self.send(event)

    def _messages(self, batch: Batch, time_tag: bool, id_tag: bool) -> bytes:
        """The batch's bytes for one tag variant; b"" when it holds more than messages."""
        events = [event for event, *_ in batch.events]
        if not all(type(event) is ev.Message for event in events):
            return b""
        codec = self.shared.codec
        return b"".join([codec.message(cast(ev.Message, e), time_tag, id_tag) for e in events])

    def close(self, reason: str) -> None:
        self.ended = True
        if self.outbox:
            self.outbox.finish()

    def _registered(self) -> None:
        """The registration timeout has nothing left to wait for (the timer is then free
        for `_confirm`)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # ---- what the client has read -------------------------------------------------------------
    def _confirm(self) -> None:
        """Send the PING that confirms what was written, or set the timer for it (one at a
        time, `PROBE_GAP` apart, none while the client is idle or has not answered)."""
        if self.timer is not None or self.ended:
            return
        loop = asyncio.get_running_loop()
        wait = self.conn.probe_due(loop.time())
        if wait is None:
            return
        if wait > 0:
            self.timer = loop.call_later(wait, self._probe_now)
        else:
            self._probe_now()

    def _probe_now(self) -> None:
        self.timer = None
        now = asyncio.get_running_loop().time()
        if not self.ended and self.conn.probe_due(now) is not None:
            self.conn.probe(now)
            self._pump()

    # ---- what the protocol asks for --------------------------------------------------------
    def _pump(self, *, ordered: bool = False) -> None:
        """Carry out what the protocol asks. `ordered`: these answer the client's input, so
        while requests before them wait (paced, or the session opening), so do they."""
        conn = self.conn
        while outputs := conn.take():
            for out in outputs:
                if type(out) is bytes:
                    if ordered and self.busy:
                        self.take(self._later(out))
                    elif self.outbox is not None:
                        self.outbox.push(out)
                elif isinstance(out, ToCore):
                    self._request(out.request)
                elif isinstance(out, Fetch):
                    self.take(self._fetcher(out.query))
                elif isinstance(out, Resume):
                    self._resume(out)
                elif isinstance(out, Open):
                    self.open()
                elif isinstance(out, Close):
                    self.close(out.reason)

    def _later(self, data: bytes) -> Work:
        async def write() -> None:
            if self.outbox is not None:
                self.outbox.push(data)

        return write

    def _request(self, request: rq.Request) -> None:
        if len(self.inbox) >= self.edge.config.tcp_backlog_lines:
            self.conn.event(ev.Error(code="rate_limited", message=BACKLOG_REFUSAL, ref=request.ref))
        else:
            self.take(request)

    def _resume(self, out: Resume) -> None:
        """Replay from where the last connection was (or let the client ask, with
        draft/chathistory); without a record, everything since they came into each room."""
        seen = self.seen  # a room it had read nothing of: everything since it came in
        last = {} if out.client_fetches else {room: seen.get(room, 0) for room in out.rooms}
        self.conn.resumed_from({room: seen[room] for room in out.rooms if room in seen})
        self.take(rq.Resume(session=out.token, last=last, ref=ref(RESUME)))

    def _fetcher(self, query: HistoryQuery) -> Work:
        async def fetch() -> None:
            by_room = {room: await self._visible(room) for room in query.rooms}
            self.conn.history(query, by_room)
            self._pump()

        return fetch

    async def _visible(self, room: str) -> list[ev.Message]:
        """The room's retained messages this person may read: none from before they came
        in, none shadow-muted from others (as a resume's replay)."""
        link = self.link
        if link is None or room not in link.session.rooms:
            return []
        chat, session = self.edge.chat, link.session
        try:
            messages, _ = await chat.broker.history(room, session.since.get(room, 0))
        except BrokerUnavailable:
            return []
        return [m for m in messages if chat.visible_to(m, session.uid)]

    async def resume_token(self) -> str | None:
        """`PASS resume:KEY`; what its last connection had read is found before opening:
        from that connection when it is still open on this node, else from the record it
        left (on another node still holding it: the one `_keep_read_point` keeps)."""
        token = self.conn.resume_token
        if not token:
            return token
        chat, token_hash = self.edge.chat, hash_token(token)
        live = chat.by_token.get(token_hash)
        old = live.link.sink if live is not None and live.link is not None else None
        if isinstance(old, IrcPeer):  # still open here (its network gone unnoticed, perhaps)
            self.seen = dict(old.conn.confirmed)
            return token
        try:
            raw = await chat.broker.get_flag(SEEN, token_hash)
        except BrokerUnavailable:
            raw = None
        self.seen = _rooms_and_ids(raw)
        return token

    def _keep_read_point(self) -> None:
        """Record what the client has read, every `KEEP_EVERY` seconds at most while it reads:
        should it come back on another node before this one notices the old connection is
        dead, the replay starts there, not from when it came into each room."""
        loop = asyncio.get_running_loop()
        if loop.time() < self.kept_at + KEEP_EVERY:
            return
        self.kept_at = loop.time()
        task = loop.create_task(self._record_read_point())
        self.shared.recording.add(task)
        task.add_done_callback(self._recorded)

    def _recorded(self, task: asyncio.Task[bool]) -> None:
        self.shared.recording.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:  # its type only: a broker's message may quote keys
            log.warning(
                "could not record the read point uid=%s: %s", self.uid, type(error).__name__
            )

    async def finishing(self) -> None:
        """Keep where this client was, for the resume that may follow."""
        if not await self._record_read_point():
            log.info("could not keep the resume point uid=%s", self.uid)

    async def _record_read_point(self) -> bool:
        """What the client is known to have read, per room, under its token's hash (False:
        the broker is away; the last record stands)."""
        link = self.link
        if not self.seen_key or not self.conn.seen or link is None or not link.resumable:
            return True
        # What it surely read: a connection can die unnoticed while messages are written.
        seen = json.dumps(dict(self.conn.confirmed), separators=(",", ":"))
        try:
            ttl = self.edge.config.retention_seconds
            await self.edge.chat.broker.set_flag(SEEN, self.seen_key, ttl, seen)
        except BrokerUnavailable:
            return False
        return True

    # ---- endings ---------------------------------------------------------------------------
    def _late(self) -> None:
        self.timer = None
        if not self.conn.registered and not self.ended:
            self._end("registration timed out")

    def refused(self, refusal: ev.Error) -> None:
        assert self.outbox is not None
        self.outbox.finish(_error_line(refusal.message))

    def fail(self, why: Failure) -> None:
        if why == "internal":
            self._end("internal error; sorry")
        else:
            self._end("the server could not take you in right now; try again")

    def too_slow(self) -> None:
        self._end("too slow: you were not reading fast enough")

    def _end(self, reason: str) -> None:
        log.info("closing uid=%s reason=%s", self.uid, reason.partition(":")[0])
        self.ended = True
        self.inbox.clear()
        if self.outbox:
            self.outbox.finish(_error_line(reason))


def _version() -> str:
    try:
        return metadata.version("chatsupport")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "dev"


def _error_line(reason: str) -> bytes:
    return f"ERROR :Closing link: {reason}\r\n".encode()


def _rooms_and_ids(raw: str | None) -> dict[str, int]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int)}


async def start_irc(
    edge: Edge,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    shared: IrcShared | None = None,
    reuse_port: bool = False,
) -> tuple[asyncio.Server, IrcShared]:
    """An IRC listener (plain, or TLS with `tls`); pass `shared` to a second one.
    `reuse_port`: several worker processes listen on this port (`--workers`)."""
    shared = shared or IrcShared(irc_settings(edge), edge.config.broker != "memory")
    return await listen(lambda: IrcPeer(edge, shared), host, port, tls, reuse_port), shared
