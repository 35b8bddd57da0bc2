"""The Redis broker: any number of `chatsupport serve` processes behave as one server.

Why these structures (docs/architecture.md, "Redis broker", says it at length):
- One Lua script per message takes the room's next id (INCR), keeps the message in the
  room's stream (bounded by MAXLEN and by age with MINID) and PUBLISHes it: Redis runs
  scripts one at a time, so pub/sub order is id order on every node, and the stream is the
  resume point for any node.
- One channel for the whole cluster. Every node sees every delivery and keeps the ones for
  rooms it has people in; there is no subscribe/unsubscribe race when someone joins.
- Pub/sub is at-most-once, so each node remembers the last id it delivered per room: a
  duplicate is dropped, a gap is filled from the stream before the next message, and after
  an outage every room catches up from the stream. Nothing accepted is lost or doubled.
- Membership lives in per-node hashes under a per-node lease; a node that dies stops being
  counted when its lease ends, and a live node announces its people as gone.
- Everything this node put in Redis is also held here, so after an outage (even a Redis
  that restarted empty) the node writes it back: its people's memberships, names and
  resume records, the shared secret, and room counters at least as high as any id seen.

Wire format of the channel (P events):
    M <id> <ms> <room>\\n<ref JSON>\\n<message JSON>   a room message (the PUBLISH script)
    S <room> <sender uid or ->\\n<event JSON>          a transient room event (presence)
    D <uid>\\n<event JSON>                              an event for one person
    R <uid> <node>                                     <node> adopted <uid>: others let go
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..core import events as ev
from ..core.events import Event, EventUnion, Member, Message, RoomInfo
from ..core.ports import (
    BrokerUnavailable,
    DirectHandler,
    ReleaseHandler,
    RoomHandler,
    SessionRecord,
)
from . import redis_lua as lua

log = logging.getLogger("chatsupport.broker.redis")

# ---- timing (seconds) -----------------------------------------------------------------------
LEASE = 10.0  # a node not heard from for this long is dead (URL option `lease`)
COMMAND_TIMEOUT = 3.0  # a Redis that answers nothing for this long counts as down
PUBLISH_DEADLINE = 0.8 * COMMAND_TIMEOUT  # a publish later than this is not run at all
MAX_BATCH = 256  # publishes sent in one pipeline at most
MAX_CONNECTIONS = 32  # per node; requests beyond it wait their turn (up to COMMAND_TIMEOUT)
BACKOFF_MIN = 0.05  # first reconnection delay; doubles up to BACKOFF_MAX
BACKOFF_MAX = 2.0
SECRET_TTL = 2 * 24 * 3600.0  # renewed while any node runs; gone 2 days after the last
TOMBSTONE = 60.0  # an ended session cannot be saved again for this long (late saves)
SEQ_TTL_FACTOR = 2  # a room's counter outlives its last message by 2 retention windows

DOWN = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)
NOTICE_DOWN = ev.Notice(
    kind="unavailable",
    text="delivery is interrupted: messages cannot be sent until it is back",
)
NOTICE_UP = ev.Notice(kind="available", text="delivery is back")

_event = msgspec.json.Decoder(EventUnion)
_message = msgspec.json.Decoder(Message)
_member = msgspec.json.Decoder(Member)
_record = msgspec.json.Decoder(SessionRecord)
_ref = msgspec.json.Decoder(str | None)
_encode = msgspec.json.encode


class Forgotten(Exception):
    """Redis no longer knows this node (it restarted, or we were silent past the lease)."""


@dataclass(slots=True, frozen=True)
class Published:
    id: int
    ms: int
    ref: str | None
    body: bytes

    def message(self) -> Message:
        stored = _message.decode(self.body)
        return msgspec.structs.replace(stored, id=self.id, ts=self.ms / 1000)


@dataclass(slots=True, frozen=True)
class Outgoing:
    """A publish waiting its turn."""

    keys: list[str]
    args: list[Any]
    future: asyncio.Future[Any]


@dataclass(slots=True)
class Feed:
    """Delivery state of one room that has people on this node."""

    last: int | None = None  # highest id delivered here; None until we know where to start
    pending: list[Published] = field(default_factory=list)  # arrived before that


@dataclass(slots=True, frozen=True)
class Options:
    url: str  # what redis-py gets (our own options removed)
    prefix: str
    lease: float


def parse_url(url: str) -> Options:
    """`redis://host:port/db?prefix=chatsupport:&lease=10`: our options, and the rest."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    prefix = query.pop("prefix", "chatsupport:")
    lease = float(query.pop("lease", LEASE))
    if lease <= 0:
        raise ValueError("the Redis broker's lease must be positive")
    return Options(urlunsplit(parts._replace(query=urlencode(query))), prefix, lease)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _ignore_room(room: str, event: Event, sender: str | None, ref: str | None) -> None:
    return None


def _ignore_direct(uid: str, event: Event) -> None:
    return None


class RedisBroker:
    def __init__(
        self,
        url: str,
        retention_seconds: float,
        retention_messages: int,
        wallclock: Callable[[], float],
    ) -> None:
        options = parse_url(url)
        self.retention_seconds = retention_seconds
        self.retention_messages = retention_messages
        # Message times come from Redis' clock (one for all nodes); ours only serves to
        # tell Redis, in its time, until when a publish may still run (see PUBLISH).
        self.wallclock = wallclock
        self._clock_offset = 0.0  # Redis' time minus ours, in seconds (from heartbeats)
        self.prefix = options.prefix
        self.lease = options.lease
        self.node = secrets.token_hex(6)
        self.healthy = False
        self._channel = self.prefix + "events"
        pool = BlockingConnectionPool.from_url(
            options.url,
            max_connections=MAX_CONNECTIONS,  # a burst of requests waits for a connection
            timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # we notice failures ourselves, then resynchronise
            socket_timeout=COMMAND_TIMEOUT,
            socket_connect_timeout=COMMAND_TIMEOUT,
            client_name=f"chatsupport-{self.node}",  # operators (and tests) can tell nodes apart
        )
        self._redis = Redis(connection_pool=pool)
        self._scripts = {
            name: self._redis.register_script(getattr(lua, name))
            for name in dir(lua)
            if name.isupper() and not name.startswith("_")
        }
        self._on_room: RoomHandler = _ignore_room
        self._on_direct: DirectHandler = _ignore_direct
        self._on_release: ReleaseHandler | None = None
        # What this node put in Redis, kept here to write back after an outage.
        self._local: dict[str, dict[str, Member]] = {}  # room -> uid -> member, this node
        self._feeds: dict[str, Feed] = {}
        self._known: dict[str, tuple[int, float]] = {}  # room -> (highest id seen, when)
        self._names: dict[str, str] = {}  # name key -> uid, claimed by this node
        self._releases: dict[str, str] = {}  # names given up while Redis was away
        self._sessions: dict[str, SessionRecord] = {}  # token hash -> record, held here
        self._owners: dict[str, str] = {}  # uid -> token hash
        self._drops: set[str] = set()  # records to delete once Redis is back
        self._dropped: dict[str, float] = {}  # token hash -> until when it stays ended
        self._secrets: dict[str, bytes] = {}
        self._lock = asyncio.Lock()  # one delivery path at a time: order is kept
        # Membership changes and reads of this node go to Redis one at a time, in the order
        # they were made: a `who` after a leave on the same node never shows the one who left.
        self._membership = asyncio.Lock()
        self._outgoing: list[Outgoing] = []  # publishes waiting for the publisher, in order
        self._wake = asyncio.Event()
        self._pubsub: PubSub | None = None
        self._broken = asyncio.Event()
        self._told_down = False
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _where(self) -> str:
        """Where Redis is, for messages: host and port, never a password."""
        kwargs = self._redis.connection_pool.connection_kwargs
        if "path" in kwargs:
            return str(kwargs["path"])
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(
        self,
        on_room: RoomHandler,
        on_direct: DirectHandler,
        on_release: ReleaseHandler | None = None,
    ) -> None:
        self._on_room, self._on_direct, self._on_release = on_room, on_direct, on_release
        try:
            await self._connect()
        except (*DOWN, RedisError) as error:
            await self._redis.aclose(close_connection_pool=True)
            raise BrokerUnavailable(f"cannot reach Redis at {self._where()}: {error}") from None
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._supervise()),
            loop.create_task(self._heartbeat()),
            loop.create_task(self._publisher()),
        ]
        log.info("redis broker started node=%s", self.node)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail_outgoing()
        if self.healthy:
            with contextlib.suppress(*DOWN, RedisError):
                await self._retire()
        self.healthy = False
        await self._close_pubsub()
        await self._redis.aclose(close_connection_pool=True)
        self._on_room, self._on_direct, self._on_release = _ignore_room, _ignore_direct, None

    async def _retire(self) -> None:
        """Go as a dead node goes, but at once: our lease ends now and we reap ourselves, so
        the others see our people leave (they may resume on another node)."""
        await self._redis.zadd(self._key("nodes"), {self.node: 0})
        await self._announce_gone(await self._exec("REAP", [self._key("nodes")], [self.prefix]))

    # ---- calling Redis ---------------------------------------------------------------------
    async def _exec(self, script: str, keys: Iterable[str] = (), args: Iterable[Any] = ()) -> Any:
        """Run a script whatever our state (the resync uses this while not yet healthy)."""
        return await self._scripts[script](keys=list(keys), args=list(args))

    async def _call(self, script: str, keys: Iterable[str] = (), args: Iterable[Any] = ()) -> Any:
        """Run a script for a request: refused at once while Redis is away."""
        if not self.healthy:
            raise BrokerUnavailable("redis is unreachable")
        try:
            return await self._exec(script, keys, args)
        except DOWN as error:
            self._lost(error)
            raise BrokerUnavailable("redis is unreachable") from error
        except RedisError as error:  # e.g. out of memory: this request fails, nothing else
            log.error("redis refused %s: %s", script, error)
            raise BrokerUnavailable(str(error)) from error

    def _lost(self, error: BaseException) -> None:
        """Redis is away: say so once, and let the supervisor reconnect and resynchronise."""
        self._broken.set()
        if self._stopping or not self.healthy:
            return
        self.healthy = False
        log.warning("redis unreachable (%s): delivery interrupted", type(error).__name__)
        self._told_down = True
        self._tell_everyone(NOTICE_DOWN)

    def _tell_everyone(self, notice: ev.Notice) -> None:
        people = {uid for members in self._local.values() for uid in members}
        people.update(self._owners)
        for uid in people:
            self._on_direct(uid, notice)

    # ---- staying connected -----------------------------------------------------------------
    async def _supervise(self) -> None:
        delay = BACKOFF_MIN
        while True:
            if not self.healthy:
                try:
                    await self._connect()
                    delay = BACKOFF_MIN
                except (*DOWN, RedisError, Forgotten) as error:
                    self._lost(error)
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(delay * 2, BACKOFF_MAX)
                    continue
            try:
                await self._listen()
                raise RedisConnectionError("subscription interrupted")  # _listen only ends so
            except (*DOWN, RedisError, Forgotten) as error:
                self._lost(error)

    async def _connect(self) -> None:
        """A fresh subscription, everything written back, missed messages delivered."""
        await self._close_pubsub()
        await self._redis.connection_pool.disconnect()  # connections to a Redis now gone
        self._broken.clear()
        pubsub = self._redis.pubsub()
        self._pubsub = pubsub
        await pubsub.subscribe(self._channel)
        # Only once Redis confirms the subscription is nothing missed between catch-up and live.
        async with asyncio.timeout(COMMAND_TIMEOUT):
            while (await pubsub.get_message(timeout=COMMAND_TIMEOUT)) is None:
                pass
        await self._resync()
        if self._broken.is_set():  # lost again while writing back: start over
            raise RedisConnectionError("connection lost while resynchronising")
        self.healthy = True
        if self._told_down:
            self._told_down = False
            log.info("redis reachable again: delivery restored")
            self._tell_everyone(NOTICE_UP)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            # redis-py < 6 leaves aclose() untyped and later versions type it: calling it
            # through a typed name checks the same on every version we accept.
            close: Callable[[], Awaitable[None]] = pubsub.aclose
            with contextlib.suppress(*DOWN, RedisError):
                await close()

    async def _listen(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while not self._broken.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None and message.get("type") == "message":
                await self._dispatch(message["data"])

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        refresh_at = loop.time() + self.retention_seconds / 4
        while True:
            await asyncio.sleep(self.lease / 4)
            if not self.healthy:
                continue
            try:
                await self._beat()
                if loop.time() >= refresh_at:
                    await self._refresh()
                    refresh_at = loop.time() + self.retention_seconds / 4
            except (*DOWN, Forgotten) as error:
                self._lost(error)
            except RedisError:
                log.exception("heartbeat failed")

    async def _beat(self) -> None:
        """Renew this node's lease and its keys; announce the people of dead nodes as gone."""
        if not await self._renew_lease():
            raise Forgotten
        lease = _ms(self.lease)
        seq_ttl = _ms(SEQ_TTL_FACTOR * self.retention_seconds)
        pipe = self._redis.pipeline(transaction=False)
        for room in self._local:
            pipe.pexpire(self._key("m", self.node, room), 3 * lease)
            # A quiet room with people in it keeps its counter: ids never start over under them.
            pipe.pexpire(self._key("seq", room), seq_ttl)
        pipe.pexpire(self._key("nr", self.node), 3 * lease)
        await pipe.execute()
        await self._announce_gone(await self._exec("REAP", [self._key("nodes")], [self.prefix]))
        self._forget_quiet_rooms(loop_time())

    async def _announce_gone(self, gone: list[bytes]) -> None:
        """`leave` for the people of a node that died (REAP's flat [room, count, member])."""
        for i in range(0, len(gone), 3):
            room, count, member = _text(gone[i]), int(gone[i + 1]), _member.decode(gone[i + 2])
            presence = ev.Presence(
                room=room, event="leave", uid=member.uid, name=member.name, count=count
            )
            await self.signal(room, presence, member.uid)

    async def _renew_lease(self) -> bool:
        """Renew the lease; note how far Redis' clock is from ours. False: we were forgotten."""
        before = self.wallclock()
        known, now = await self._exec(
            "HEARTBEAT", [self._key("nodes")], [self.node, _ms(self.lease)]
        )
        self._clock_offset = int(now) / 1000 - (before + self.wallclock()) / 2
        return bool(known)

    async def _refresh(self) -> None:
        """Keep names and resume records alive while their people are here."""
        ttl = _ms(self.retention_seconds)
        pipe = self._redis.pipeline(transaction=False)
        for key in self._names:
            pipe.pexpire(self._key("name", key), ttl)
        for token_hash in self._sessions:
            pipe.pexpire(self._key("sess", token_hash), ttl)
        for name in self._secrets:
            pipe.pexpire(self._key("secret", name), _ms(SECRET_TTL))
        await pipe.execute()

    def _forget_quiet_rooms(self, now: float) -> None:
        horizon = now - 2 * self.retention_seconds
        for room in [r for r, (_, seen) in self._known.items() if seen < horizon]:
            if room not in self._local:
                del self._known[room]

    # ---- resynchronising after an outage ---------------------------------------------------
    async def _resync(self) -> None:
        await self._renew_lease()
        for name, value in list(self._secrets.items()):
            await self._restore_secret(name, value)
        await self._seed_counters()
        await self._rewrite_memberships()
        await self._reclaim_names()
        await self._rewrite_sessions()
        async with self._lock:
            for room, feed in list(self._feeds.items()):
                if feed.last is None:
                    known = self._known.get(room)
                    feed.last = known[0] if known else await self._last(room)
                    feed.pending.clear()
                await self._catch_up(room, feed)

    async def _restore_secret(self, name: str, value: bytes) -> None:
        kept = await self._exec("SECRET", [self._key("secret", name)], [value, _ms(SECRET_TTL)])
        if bytes(kept) != value:  # a node started while Redis was empty and set its own
            log.warning(
                "shared secret %s differs from the one Redis now has: restart this node so "
                "that all nodes hash addresses alike",
                name,
            )

    async def _seed_counters(self) -> None:
        """A Redis that lost its data must still never hand out an id already used."""
        if not self._known:
            return
        ttl = _ms(SEQ_TTL_FACTOR * self.retention_seconds)
        pipe = self._redis.pipeline(transaction=False)
        for room, (last, _) in self._known.items():
            await self._scripts["SEED"](
                keys=[self._key("seq", room)], args=[last, ttl], client=pipe
            )
        await pipe.execute()

    async def _rewrite_memberships(self) -> None:
        lease = 3 * _ms(self.lease)
        rooms_key = self._key("nr", self.node)
        before = {_text(r) for r in await self._redis.smembers(rooms_key)}
        pipe = self._redis.pipeline(transaction=True)
        for room in before | set(self._local):
            pipe.delete(self._key("m", self.node, room))
        pipe.delete(rooms_key)
        for room, members in self._local.items():
            if members:
                key = self._key("m", self.node, room)
                pipe.hset(key, mapping={uid: _encode(m) for uid, m in members.items()})
                pipe.pexpire(key, lease)
                pipe.sadd(rooms_key, room)
        pipe.pexpire(rooms_key, lease)
        await pipe.execute()

    async def _reclaim_names(self) -> None:
        ttl = _ms(self.retention_seconds)
        for key, uid in list(self._releases.items()):
            await self._exec("RELEASE_NAME", [self._key("name", key)], [uid])
            self._releases.pop(key, None)
        for key, uid in list(self._names.items()):
            if not await self._exec("CLAIM_NAME", [self._key("name", key)], [uid, ttl]):
                # Taken elsewhere while we could not check: two people share a name until
                # one of them changes it. Rare (only while this node alone was cut off).
                log.warning("a name claimed during the outage is also held on another node")

    async def _rewrite_sessions(self) -> None:
        for token_hash in list(self._drops):
            await self._exec(
                "DROP_SESSION", [self._key("sess", token_hash)], [self.node, _ms(TOMBSTONE)]
            )
            self._drops.discard(token_hash)
        for record in list(self._sessions.values()):
            await self._saved(record, await self._write_session(record, self._exec))

    # ---- delivery --------------------------------------------------------------------------
    async def _dispatch(self, data: bytes) -> None:
        try:
            kind = data[:1]
            if kind == b"M":
                await self._on_published(data)
            elif kind == b"S":
                head, body = data.split(b"\n", 1)
                _, room, sender = _text(head).split(" ", 2)
                # Not filtered by our members: the core has channels of its own (staff
                # channels) that the broker is never told about.
                self._on_room(room, _event.decode(body), None if sender == "-" else sender, None)
            elif kind == b"D":
                head, body = data.split(b"\n", 1)
                pending = self._on_direct(_text(head)[2:], _event.decode(body))
                if pending is not None:
                    await self._settle(pending)
            elif kind == b"R":
                _, uid, node = _text(data).split(" ")
                if node != self.node:
                    await self._release(uid)
        except (ValueError, msgspec.DecodeError):
            log.warning("ignored a malformed delivery on %s", self._channel)

    async def _settle(self, pending: Awaitable[None]) -> None:
        """Await what the core does for a direct event (in delivery order); its failure is
        logged and never stops this node's deliveries."""
        try:
            await pending
        except Exception:
            log.exception("acting on a direct event failed")

    async def _on_published(self, data: bytes) -> None:
        header, ref, body = data.split(b"\n", 2)
        _, id_, ms, room_raw = header.split(b" ", 3)
        room = _text(room_raw)
        item = Published(int(id_), int(ms), _ref.decode(ref), body)
        self._note(room, item.id)
        if room not in self._feeds:
            return  # nobody here is in that room
        async with self._lock:
            feed = self._feeds.get(room)
            if feed is None:
                return
            if feed.last is None:
                feed.pending.append(item)
                return
            await self._advance(room, feed, item)

    async def _advance(self, room: str, feed: Feed, item: Published) -> None:
        """Deliver `item` in id order: drop what was delivered, fill a gap from the stream."""
        assert feed.last is not None
        if item.id <= feed.last:
            return
        if item.id > feed.last + 1:
            await self._catch_up(room, feed)
            if self._feeds.get(room) is not feed or item.id <= (feed.last or 0):
                return
        feed.last = item.id
        self._deliver(room, item.message(), item.ref)

    async def _catch_up(self, room: str, feed: Feed) -> None:
        assert feed.last is not None
        messages, _ = await self._read_history(room, feed.last)
        for message in messages:
            if self._feeds.get(room) is feed and message.id > feed.last:
                feed.last = message.id
                self._deliver(room, message, None)

    def _deliver(self, room: str, message: Message, ref: str | None) -> None:
        try:
            self._on_room(room, message, message.uid, ref)
        except Exception:  # a fault in fan-out must not stop delivery to everyone else
            log.exception("delivery failed in room %s", room)

    def _note(self, room: str, id_: int) -> None:
        seen = self._known.get(room)
        self._known[room] = (max(id_, seen[0] if seen else 0), loop_time())

    async def _release(self, uid: str) -> None:
        """Another node adopted `uid` (resume there): let go here without a word."""
        token_hash = self._owners.pop(uid, None)
        if token_hash is not None:
            self._sessions.pop(token_hash, None)
        for room in [r for r, members in self._local.items() if uid in members]:
            self._forget_member(room, uid)
        for key in [k for k, holder in self._names.items() if holder == uid]:
            del self._names[key]
        if self._on_release is not None:
            await self._on_release(uid)

    def _forget_member(self, room: str, uid: str) -> int:
        members = self._local.get(room, {})
        members.pop(uid, None)
        if not members:
            self._local.pop(room, None)
            self._feeds.pop(room, None)
        return len(members)

    # ---- Broker: messages ------------------------------------------------------------------
    async def publish(self, message: Message, ref: str | None) -> Message:
        room = message.room
        body = _encode(message)
        # Past this (Redis time), the sender has been told `unavailable`: too late to publish.
        deadline = self.wallclock() + self._clock_offset + PUBLISH_DEADLINE
        if not self.healthy:
            raise BrokerUnavailable("redis is unreachable")
        keys = [self._key("seq", room), self._key("hist", room)]
        args = [
            self._channel,
            room,
            body,
            self.retention_messages,
            _ms(self.retention_seconds),
            _ms(SEQ_TTL_FACTOR * self.retention_seconds),
            _encode(ref),
            _ms(deadline),
        ]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._outgoing.append(Outgoing(keys, args, future))
        self._wake.set()
        stored = await future
        if not stored:
            raise BrokerUnavailable("redis answered too late")
        id_, ms = stored
        self._note(room, int(id_))
        return msgspec.structs.replace(message, id=int(id_), ts=int(ms) / 1000)

    async def _publisher(self) -> None:
        """Publishes go out in the order this node accepted them, as one pipeline per turn:
        two people on one node get ids in the order they spoke, and a burst costs one
        round trip, not one each."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outgoing:
                batch = self._outgoing[:MAX_BATCH]
                del self._outgoing[:MAX_BATCH]
                await self._send(batch)

    async def _send(self, batch: list[Outgoing]) -> None:
        try:
            results = await self._pipeline("PUBLISH", batch)
        except DOWN as error:
            self._lost(error)
            results = [BrokerUnavailable("redis is unreachable")] * len(batch)
        except RedisError as error:
            log.error("redis refused a publish: %s", error)
            results = [BrokerUnavailable(str(error))] * len(batch)
        for item, result in zip(batch, results, strict=True):
            if item.future.done():  # the sender is gone
                continue
            if isinstance(result, Exception):
                item.future.set_exception(BrokerUnavailable(str(result)))
            else:
                item.future.set_result(result)

    async def _pipeline(self, name: str, batch: list[Outgoing]) -> list[Any]:
        """Run one script for each item, in order, on one connection (EVALSHA; loaded again
        if Redis forgot it, in which case none of them ran)."""
        script = self._scripts[name]
        for _ in range(2):
            pipe = self._redis.pipeline(transaction=False)
            for item in batch:
                pipe.evalsha(script.sha, len(item.keys), *item.keys, *item.args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            if not any(isinstance(r, NoScriptError) for r in results):
                return results
            script.sha = await self._redis.script_load(script.script)
        return results

    def _fail_outgoing(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        for item in outgoing:
            if not item.future.done():
                item.future.set_exception(BrokerUnavailable("the server is stopping"))

    async def signal(self, room: str, event: Event, sender: str | None) -> None:
        if self.healthy:
            data = f"S {room} {sender or '-'}\n".encode() + _encode(event)
            try:
                await self._redis.publish(self._channel, data)
                return
            except DOWN as error:
                self._lost(error)
        self._on_room(room, event, sender, None)  # Redis away: at least this node hears it

    async def direct(self, uid: str, event: Event) -> None:
        if not self.healthy:
            raise BrokerUnavailable("redis is unreachable")
        try:
            await self._redis.publish(self._channel, f"D {uid}\n".encode() + _encode(event))
        except DOWN as error:
            self._lost(error)
            raise BrokerUnavailable("redis is unreachable") from error

    async def history(self, room: str, after: int) -> tuple[list[Message], bool]:
        if not self.healthy:
            raise BrokerUnavailable("redis is unreachable")
        try:
            return await self._read_history(room, after)
        except DOWN as error:
            self._lost(error)
            raise BrokerUnavailable("redis is unreachable") from error

    async def _read_history(self, room: str, after: int) -> tuple[list[Message], bool]:
        last_raw, entries = await self._exec(
            "HISTORY",
            [self._key("seq", room), self._key("hist", room)],
            [after, self.retention_messages, _ms(self.retention_seconds)],
        )
        last = int(last_raw)
        missed = []
        for _, raw in reversed(entries):
            fields = dict(zip(raw[::2], raw[1::2], strict=True))
            item = Published(int(fields[b"i"]), int(fields[b"t"]), None, fields[b"b"])
            if item.id > after:
                missed.append(item.message())
        first_kept = missed[0].id if missed else last + 1
        return missed, first_kept <= after + 1 or after >= last

    async def last_id(self, room: str) -> int:
        if self.healthy:
            try:
                return await self._last(room)
            except DOWN as error:
                self._lost(error)
        known = self._known.get(room)  # Redis away: the newest id this node has seen
        return known[0] if known else 0

    async def _last(self, room: str) -> int:
        value = await self._redis.get(self._key("seq", room))
        return int(value or 0)

    # ---- Broker: membership ----------------------------------------------------------------
    async def join_room(self, room: str, member: Member) -> int:
        self._local.setdefault(room, {})[member.uid] = member
        feed = self._feeds.get(room)
        if feed is None:  # made before the script runs: what arrives meanwhile waits in it
            feed = self._feeds[room] = Feed()
        try:
            async with self._membership:
                count, seq = await self._call(
                    "JOIN",
                    [
                        self._key("m", self.node, room),
                        self._key("nr", self.node),
                        self._key("seq", room),
                    ],
                    [self.prefix, room, member.uid, _encode(member), 3 * _ms(self.lease)],
                )
        except BrokerUnavailable:  # written back on resync; meanwhile only this node counts
            return len(self._local.get(room, {}))
        await self._start_feed(room, feed, int(seq))
        return int(count)

    async def _start_feed(self, room: str, feed: Feed, seq: int) -> None:
        """The first local member joined at id `seq`: deliver what came after, in order."""
        async with self._lock:
            if self._feeds.get(room) is not feed or feed.last is not None:
                return
            feed.last = seq
            pending, feed.pending = feed.pending, []
            try:
                for item in pending:
                    await self._advance(room, feed, item)
            except DOWN as error:
                self._lost(error)  # the resync catches this room up

    async def leave_room(self, room: str, uid: str) -> int:
        left = self._forget_member(room, uid)
        try:
            async with self._membership:
                count = await self._call(
                    "LEAVE",
                    [self._key("m", self.node, room), self._key("nr", self.node)],
                    [self.prefix, room, uid],
                )
        except BrokerUnavailable:
            return left
        return int(count)

    async def members(self, room: str) -> list[Member]:
        try:
            async with self._membership:
                found = await self._call("MEMBERS", [], [self.prefix, room])
        except BrokerUnavailable:
            return list(self._local.get(room, {}).values())
        unique = {m.uid: m for m in (_member.decode(raw) for raw in found)}
        return list(unique.values())

    async def room_counts(self) -> list[RoomInfo]:
        try:
            async with self._membership:
                flat = await self._call("ROOM_COUNTS", [], [self.prefix])
        except BrokerUnavailable:
            return [RoomInfo(room, len(m)) for room, m in sorted(self._local.items())]
        counts = {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return [RoomInfo(room, n) for room, n in sorted(counts.items()) if n > 0]

    async def claim_name(self, key: str, uid: str) -> bool:
        holder = self._names.get(key)
        if holder is not None and holder != uid:
            return False
        try:
            claimed = bool(
                await self._call(
                    "CLAIM_NAME", [self._key("name", key)], [uid, _ms(self.retention_seconds)]
                )
            )
        except BrokerUnavailable:
            claimed = True  # only this node can be checked now; confirmed on resync
        if claimed:
            self._names[key] = uid
            self._releases.pop(key, None)
        return claimed

    async def release_name(self, key: str, uid: str) -> None:
        if self._names.get(key) == uid:
            del self._names[key]
        try:
            await self._call("RELEASE_NAME", [self._key("name", key)], [uid])
        except BrokerUnavailable:
            self._releases[key] = uid

    # ---- Broker: resume on any node --------------------------------------------------------
    async def save_session(self, record: SessionRecord) -> None:
        if self._sessions.get(record.token_hash) == record:
            return  # unchanged: nothing to write (Chat saves on every tick)
        if self._dropped.get(record.token_hash, 0.0) > loop_time():
            return  # ended a moment ago: a late save must not revive it
        newcomer = record.uid not in self._owners
        self._sessions[record.token_hash] = record
        self._owners[record.uid] = record.token_hash
        self._drops.discard(record.token_hash)
        if not self.healthy:
            if newcomer and self._told_down:  # came after the others were told (after `welcome`)
                self._on_direct(record.uid, NOTICE_DOWN)
            return  # written on resync
        try:
            outcome = await self._write_session(record, self._call)
        except BrokerUnavailable:
            return
        await self._saved(record, outcome)

    async def _saved(self, record: SessionRecord, outcome: int) -> None:
        """After SAVE_SESSION: 0 another node holds the person now, 2 the session ended."""
        if outcome == 0:
            await self._release(record.uid)
        elif outcome == 2:
            self._forget_record(record.token_hash)

    def _forget_record(self, token_hash: str) -> None:
        record = self._sessions.pop(token_hash, None)
        if record is not None and self._owners.get(record.uid) == token_hash:
            del self._owners[record.uid]

    async def _write_session(self, record: SessionRecord, run: Callable[..., Any]) -> int:
        saved = await run(
            "SAVE_SESSION",
            [self._key("sess", record.token_hash)],
            [
                self.node,
                record.uid,
                " ".join(record.rooms),
                _encode(record),
                _ms(self.retention_seconds),
            ],
        )
        return int(saved)

    async def take_session(self, token_hash: str) -> tuple[SessionRecord, list[str]] | None:
        found = await self._call(
            "TAKE_SESSION",
            [self._key("sess", token_hash)],
            [self.prefix, self.node, self._channel],
        )
        if not found:
            return None
        record = _record.decode(found[0])
        self._sessions[token_hash] = record
        self._owners[record.uid] = token_hash
        return record, [_text(room) for room in found[1:]]

    async def drop_session(self, token_hash: str) -> None:
        self._forget_record(token_hash)
        now = loop_time()
        for ended in [h for h, until in self._dropped.items() if until <= now]:
            del self._dropped[ended]
        self._dropped[token_hash] = now + TOMBSTONE
        try:
            await self._call(
                "DROP_SESSION", [self._key("sess", token_hash)], [self.node, _ms(TOMBSTONE)]
            )
        except BrokerUnavailable:
            self._drops.add(token_hash)

    async def shared_secret(self, name: str) -> bytes:
        if name not in self._secrets:
            candidate = secrets.token_bytes(32)
            kept = await self._call(
                "SECRET", [self._key("secret", name)], [candidate, _ms(SECRET_TTL)]
            )
            self._secrets[name] = bytes(kept)
        return self._secrets[name]

    # ---- Broker: flags ---------------------------------------------------------------------
    async def set_flag(self, kind: str, key: str, ttl: float, value: str = "1") -> None:
        await self._call("SET_FLAG", [self._key("flags", kind)], [key, _ms(ttl), value])

    async def get_flag(self, kind: str, key: str) -> str | None:
        value = await self._call("GET_FLAG", [self._key("flags", kind)], [key])
        return _text(value) if value else None

    async def clear_flag(self, kind: str, key: str) -> bool:
        found = await self.get_flag(kind, key)
        await self._guard(self._redis.hdel(self._key("flags", kind), key))
        return found is not None

    async def flags(self, kind: str) -> dict[str, str]:
        flat = await self._call("FLAGS", [self._key("flags", kind)])
        return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def _guard(self, command: Any) -> Any:
        """Await a plain command the way `_call` runs a script."""
        if not self.healthy:
            command.close()
            raise BrokerUnavailable("redis is unreachable")
        try:
            return await command
        except DOWN as error:
            self._lost(error)
            raise BrokerUnavailable("redis is unreachable") from error

    # ---- Broker: queues --------------------------------------------------------------------
    def _queue_keys(self, queue: str) -> list[str]:
        return [self._key("queue", queue), self._key("queue", queue, "n")]

    async def enqueue(self, queue: str, item: str, ttl: float, priority: int = 1) -> int:
        position = await self._call(
            "ENQUEUE", self._queue_keys(queue), [item, _ms(ttl), priority, 0]
        )
        return int(position)

    async def reprioritise(self, queue: str, item: str, priority: int) -> bool:
        moved = await self._call("ENQUEUE", self._queue_keys(queue), [item, 0, priority, 1])
        return bool(moved)

    async def dequeue(self, queue: str, item: str | None = None) -> str | None:
        taken = await self._call("DEQUEUE", [self._key("queue", queue)], [item or ""])
        return _text(taken) if taken else None

    async def queued(self, queue: str) -> list[str]:
        items = await self._guard(self._redis.zrange(self._key("queue", queue), 0, -1))
        return [_text(item) for item in items]


def loop_time() -> float:
    return asyncio.get_running_loop().time()
