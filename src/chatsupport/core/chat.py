"""The chat core: registry of people, rooms, fan-out, and dispatch of requests to handlers.

It never touches a socket and never awaits a peer: transports hand it decoded requests
through `open`, `handle` and `close`; it answers by queueing events on each peer's Sink.
It awaits only the Broker (shared state), which for the embedded default answers at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgspec

from ..config import Config
from . import events as ev
from . import lifecycle, names
from . import requests as rq
from .batch import Batch
from .commands import UsageError, is_command, parse_command, type_name
from .feature import (
    Channel,
    Cost,
    F,
    Feature,
    Handler,
    Visibility,
    implementing,
    outranks,
)
from .lifecycle import take_over
from .limits import Clock, Stalls, TokenBucket, WindowCounter
from .names import name_key, random_name
from .ports import Broker, BrokerUnavailable, SessionRecord, Sink
from .session import Link, Session
from .vocabulary import ErrorCode, Role

log = logging.getLogger("chatsupport.core")

ROLE_NAMES: dict[Role, str] = {"mod": "moderators", "listener": "signed-in listeners"}


class Refused(Exception):
    """A handler's way to answer with `error {code, message}`. `flood` marks the one refusal
    that counts towards an automatic mute: being over the message budget (a mistake, such as
    a message too long or a room one is not in, never does)."""

    def __init__(self, code: ErrorCode, message: str, *, flood: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.flood = code, message, flood


def health_notice(up: bool) -> ev.Notice:
    if up:
        return ev.Notice(kind="available", text="delivery is back")
    text = "delivery is interrupted: messages cannot be sent until it is back"
    return ev.Notice(kind="unavailable", text=text)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Chat:
    def __init__(
        self,
        config: Config,
        broker: Broker,
        features: Sequence[Feature] = (),
        *,
        clock: Clock = time.monotonic,
        wallclock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self.clock = clock
        self.wallclock = wallclock
        self.rng = rng or random.SystemRandom()
        self.sessions: dict[str, Session] = {}  # uid -> session, on this node
        self.by_token: dict[str, Session] = {}  # sha256(token) -> session
        self.local: dict[str, dict[str, Session]] = {}  # room -> uid -> session on this node
        self.links: set[Link] = set()
        self.per_address: dict[str, int] = {}
        self.new_per_address = WindowCounter(config.new_conns_per_address, config.new_conns_window)
        self.counters: dict[str, int] = {}  # metrics: name -> count (no text, no addresses)
        self.stalls = Stalls()  # when this node could not read (`beat` by the server)
        # Node-internal channels (`!mods`): channel -> uid -> session; never rooms.
        self.subscribers: dict[str, dict[str, Session]] = {}
        # This turn's room events, not yet handed to the members (`seal`), once a transport
        # asks for batches (`batch_with`).
        self._batch: Batch | None = None
        self.batching: Callable[[], None] | None = None
        self.stopping = False
        self.features = tuple(features)
        for feature in self.features:
            feature.bind(self)
        self._routes = _routes(self.features)
        self._compose(self.features)

    def _compose(self, features: Sequence[Feature]) -> None:
        """Each hook's callers, in feature order, made once (the hot paths only walk these)."""
        self._admit: list[Callable[[str], ev.Error | None]] = implementing(features, "admit")
        self._helplines: list[Callable[[], list[dict[str, Any]] | None]] = implementing(
            features, "helplines"
        )
        self._new: list[Callable[[Session], None]] = implementing(features, "on_new")
        self._checks: list[Callable[[Link, rq.Request], None]] = implementing(features, "check")
        self._say_checks: list[Callable[[Session, str, str], None]] = implementing(
            features, "check_say"
        )
        self._join_checks: list[Callable[[Session, str], None]] = implementing(
            features, "check_join"
        )
        self._said: list[Callable[[Session, ev.Message], Awaitable[None]]] = implementing(
            features, "after_say"
        )
        self._left: list[Callable[[Session, str], Awaitable[None]]] = implementing(
            features, "on_leave"
        )
        self._ended: list[Callable[[Session], Awaitable[None]]] = implementing(features, "on_end")
        self._resumed: list[Callable[[Session], Awaitable[None]]] = implementing(
            features, "on_resume"
        )
        self._resume_owed: set[str] = set()  # uids whose on_resume waits for the broker
        self._restored: list[Callable[[Session], None]] = implementing(features, "on_restore")
        self._ticks: list[Callable[[], Awaitable[None]]] = implementing(features, "on_tick")
        self._directs: list[Callable[[Session, ev.Event], Awaitable[None] | None]] = implementing(
            features, "on_direct"
        )
        self._refused: list[Callable[[Link, rq.Request, Refused], Awaitable[None]]] = implementing(
            features, "on_refused"
        )
        self._reported: list[Callable[[str, str], None]] = implementing(features, "on_report")
        self._channels: dict[str, Channel] = {}
        for feature in features:
            for name, channel in feature.channels().items():
                if name in self._channels:
                    raise ValueError(f"two features listen to {name}")
                self._channels[name] = channel
        policies = [v for f in features if (v := f.visibility()) is not None]
        if len(policies) > 1:
            raise ValueError("more than one feature sets the visibility policy")
        self.visibility = policies[0] if policies else Visibility()

    def feature(self, kind: type[F]) -> F:
        """This chat's feature of type `kind` (LookupError if it has none)."""
        for feature in self.features:
            if isinstance(feature, kind):
                return feature
        raise LookupError(f"this chat has no {kind.__name__} feature")

    def can_handle(self, kind: type[rq.Request]) -> bool:
        return kind in self._routes

    def may(self, role: Role | None, kind: type[rq.Request]) -> bool:
        """Whether someone with `role` may send a request of type `kind` (for /help)."""
        route = self._routes.get(kind)
        return outranks(role, route.role if route else None)

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.broker.start(
            self.deliver_room, self.deliver_direct, self.disown, on_health=self.broker_health
        )

    def broker_health(self, up: bool) -> None:
        """From the broker: shared state went away (refusing `say`, `resume`, ...) or is back
        and caught up. Everyone on this node is told once, in their own words."""
        for session in list(self.sessions.values()):
            self.direct(session, health_notice(up))

    def batch_with(self, batched: Callable[[], None]) -> None:
        """Deliver room events in batches: `batched` is called after each event joins this
        turn's batch, and says when to `seal` it (at once when the server is quiet, else at
        the end of the turn, or as soon as anything else is sent). A change of someone's
        connection or of what is held for them seals first (`lifecycle.SEALERS`)."""
        self.batching = batched
        if self.seal not in lifecycle.SEALERS:
            lifecycle.SEALERS.append(self.seal)

    async def stop(self, reason: str = "server_shutdown") -> None:
        self.stopping = True
        for link in list(self.links):
            self.send(link, ev.Bye(reason=reason))
            link.sink.close(reason)
            # Resumable: with a shared broker they can come back on another node.
            await self.close(link, reason)
        self.seal()
        with contextlib.suppress(ValueError):
            lifecycle.SEALERS.remove(self.seal)
        await self.broker.stop()

    @property
    def peers(self) -> Mapping[str, Session]:
        """Connected people on this node, uid -> session (read-only)."""
        return MappingProxyType({uid: s for uid, s in self.sessions.items() if s.link})

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def rooms_in_use(self) -> int:
        """Rooms with people on this node (a metric; staff channels are not rooms)."""
        return len(self.local)

    # ---- connections -----------------------------------------------------------------------
    def admit(self, address_key: str, client_key: str = "") -> ev.Error | None:
        """Per-network connection limits; the keys are keyed hashes, never the address or
        the client's id. Each feature's `admit` hook sees the network's key, then the
        client's (bans aim at either). A refusal says why, for how long when that is known,
        and carries the help lines (`helplines`): help stays reachable to whoever is refused.

        Admitting holds the address's slot at once (connections arriving together must not
        all pass): `open` takes the slot over and `close` frees it; a transport that admits
        but never opens gives it back with `release`.
        """
        refusal = self._refusal(address_key, client_key)
        if refusal is None:
            self.per_address[address_key] = self.per_address.get(address_key, 0) + 1
            return None
        lines = self.helplines()
        return msgspec.structs.replace(refusal, resources=lines) if lines else refusal

    def helplines(self) -> list[dict[str, Any]] | None:
        """The help lines shown to anyone, even someone refused or removed (safety's)."""
        return next((found for hook in self._helplines if (found := hook())), None)

    def _refusal(self, address_key: str, client_key: str) -> ev.Error | None:
        for check in self._admit:
            for key in (address_key, client_key):
                refusal = check(key) if key else None
                if refusal is not None:
                    return refusal
        config, now = self.config, self.clock()
        if self.per_address.get(address_key, 0) >= config.max_conns_per_address:
            return ev.Error(
                code="too_many_connections",
                message=f"too many connections from your network at once (at most "
                f"{config.max_conns_per_address}); try again when someone there has left",
            )
        if not self.new_per_address.hit(address_key, now):
            wait = self.new_per_address.retry_in(address_key, now)
            return ev.Error(
                code="too_many_connections",
                message=f"too many new connections from your network (at most "
                f"{config.new_conns_per_address} in {round(config.new_conns_window / 60)} "
                f"minutes); try again in {max(1, round(wait / 60))} minutes",
            )
        return None

    def release(self, address_key: str) -> None:
        left = self.per_address.get(address_key, 1) - 1
        if left > 0:
            self.per_address[address_key] = left
        else:
            self.per_address.pop(address_key, None)

    async def open(
        self, sink: Sink, address_key: str = "", resume: str | None = None, client_key: str = ""
    ) -> Link:
        """A new connection: a fresh anonymous person in the default room, then `welcome`.

        With `resume` (a live session's token, sent as the connection's first frame), the
        connection continues that person instead; the `resume` request then replays.
        """
        old = await self._returning(resume) if resume else None
        if old is not None and resume is not None:
            return await self._reopen(sink, address_key, old, resume, client_key)
        session, token = await self._new_session(address_key, client_key)
        link = self._register(sink, session, address_key, client_key)
        session.life.connect(link)
        room = self.config.default_room
        with session.life.hold():  # `welcome` is the first frame, whatever the room says
            count = await self.enter(session, room, announce=False)
            self.send(link, self._welcome(session, token, room))
            self.send(link, await self.joined(room, count))
        await self.announce(session, room, "join", count)
        await self.broker.save_session(record_of(session))
        if not self.broker.healthy:  # came after the others were told (after `welcome`)
            self.direct(session, health_notice(False))
        log.debug("peer connected uid=%s", session.uid)
        return link

    async def _returning(self, token: str) -> Session | None:
        try:
            return await self.find_session(hash_token(token))
        except BrokerUnavailable:  # shared state is away: a fresh person; `resume` says more
            return None

    def _register(
        self, sink: Sink, session: Session, address_key: str, client_key: str = ""
    ) -> Link:
        """A connection `admit` let in (it holds the address's slot) becomes a Link."""
        link = Link(sink, session, address_key, client_key=client_key)
        self.links.add(link)
        self.count("connections_opened")
        return link

    async def _reopen(
        self, sink: Sink, address_key: str, old: Session, token: str, client_key: str = ""
    ) -> Link:
        """Resume on connect: `welcome` names the returning person; live events are held
        (lifecycle RESUMING) until the `resume` handler has replayed history, so order
        is kept."""
        link = self._register(sink, old, address_key, client_key)
        self.send(link, self._welcome(old, token, old.current or ""))
        await take_over(self, link, old)
        for room in old.rooms:
            self.send(link, await self.joined(room))
        return link

    def _welcome(self, session: Session, token: str, room: str) -> ev.Welcome:
        """The first frame of a connection, new or resumed: who they are, where, limits."""
        return ev.Welcome(
            session=token,
            uid=session.uid,
            name=session.name,
            room=room,
            rooms=list(session.rooms),
            limits=self.limits(session),
        )

    async def joined(self, room: str, count: int | None = None) -> ev.Joined:
        """`joined`: who is there, the first `presence_limit` of them in a crowded room, and
        the newest message id, read after entering: where a resume of this room starts."""
        members, last = await self.broker.members(room), await self.broker.last_id(room)
        limit = self.config.presence_limit
        count = len(members) if count is None else count
        away = min(count, sum(1 for m in members if m.away))
        return ev.Joined(room=room, count=count, members=members[:limit], last=last, away=away)

    def limits(self, session: Session | None = None) -> dict[str, int | float]:
        """The limits a client should pace itself by: its own budget, and how long it stays
        so small when it is a newcomer's (`probation_seconds` left; 0 for everyone else)."""
        c = self.config
        bucket = session.bucket if session else TokenBucket(c.msg_rate, c.msg_burst)
        probation = 0.0
        if session is not None and bucket.rate < c.msg_rate:
            probation = max(0.0, c.probation_seconds - (self.clock() - session.created))
        return {
            "max_text": c.max_text,
            "max_name": c.max_name,
            "msg_rate": bucket.rate,
            "msg_burst": bucket.burst,
            "probation_seconds": round(probation),
            "retention_seconds": c.retention_seconds,
            "retention_messages": c.retention_messages,
        }

    async def _new_session(self, address_key: str, client_key: str = "") -> tuple[Session, str]:
        """A new person and their secret resume token (only its hash is kept)."""
        uid = "u" + secrets.token_hex(6)
        token = secrets.token_urlsafe(24)
        name, key = await self._free_name(uid)
        bucket = TokenBucket(self.config.msg_rate, self.config.msg_burst)
        session = Session(
            uid=uid,
            token_hash=hash_token(token),
            name=name,
            name_key=key,  # the one the claims were made with: one string per person
            bucket=bucket,
            created=self.clock(),
            address_key=address_key,
            client_key=client_key,
        )
        for hook in self._new:
            hook(session)
        self.sessions[uid] = session
        self.by_token[session.token_hash] = session
        return session, token

    async def _free_name(self, uid: str) -> tuple[str, str]:
        """A random name nobody near holds, claimed for `uid`; with its key."""
        for attempt in range(60):
            name = random_name(self.rng)
            if attempt >= 20:
                name = f"{name} {self.rng.randint(2, 999)}"
            key = name_key(name)
            if await names.claim(self.broker, key, uid):
                return name, key
        raise BrokerUnavailable("no free name")

    async def close(self, link: Link, reason: str, *, resumable: bool = True) -> None:
        """The connection is gone. A resumable session stays for the grace period."""
        if not link.open:
            return
        link.open = False
        self.links.discard(link)
        self.release(link.address_key)
        session = link.session
        if session.link is not link:
            return  # this connection had been handed over (resume elsewhere)
        log.debug("peer disconnected uid=%s reason=%s", session.uid, reason)
        if resumable and link.resumable and link.sink.can_resume:
            session.life.detach(self.clock())
            await self.broker.save_session(record_of(session))
            if not self.stopping:  # a stopping node's people are shown gone, not away
                await self.show_presence(session, "away")
        else:
            await self.end_session(session)

    async def end_session(self, session: Session) -> None:
        """Forget a person: leave every room (announced), free the name and the token."""
        if not session.life.end():
            return  # ended already
        # Not resumable from the first moment, here or on another node: ending awaits.
        self.by_token.pop(session.token_hash, None)
        await self.broker.drop_session(session.token_hash)
        for room in list(session.rooms):
            await self.exit(session, room)
        self.sessions.pop(session.uid, None)
        await names.release(self.broker, session.name_key, session.uid)
        self._unsubscribe_all(session)
        for hook in self._ended:
            await hook(session)

    async def adopt(self, link: Link, old: Session) -> None:
        """Resume: this connection becomes `old`'s; the fresh identity it had is retired."""
        fresh = link.session
        await self.end_session(fresh)
        await take_over(self, link, old)

    async def find_session(self, token_hash: str) -> Session | None:
        """The person a resume token belongs to: held here, or adopted from another node."""
        found = self.by_token.get(token_hash)
        if found is not None:
            return found
        taken = await self.broker.take_session(token_hash)
        return None if taken is None else await self._restore(*taken)

    async def _restore(self, record: SessionRecord, shown_in: list[str]) -> Session:
        """Rebuild a person another node held; they stay in their rooms (announced only
        where the others no longer saw them)."""
        name, key = record.name, name_key(record.name)
        if not await names.claim(self.broker, key, record.uid):  # taken since they left
            name, key = await self._free_name(record.uid)
        session = Session(
            uid=record.uid,
            token_hash=record.token_hash,
            name=name,
            name_key=key,
            bucket=TokenBucket(self.config.msg_rate, self.config.msg_burst),
            created=self.clock(),
            role=record.role,
            ignored=frozenset(record.ignored),
            crisis=record.crisis,
            region=record.region,
            since=dict(record.since),  # entering below keeps these: no replay before them
        )
        session.life.restore(self.clock(), record.departed)
        self.sessions[session.uid] = session
        self.by_token[session.token_hash] = session
        for hook in self._restored:
            hook(session)
        for room in record.rooms:
            await self.enter(session, room, announce=room not in shown_in)
        session.current = record.current if record.current in session.rooms else session.current
        return session

    async def disown(self, uid: str) -> None:
        """Another node adopted this person (they resumed there): let go here without a
        word to the room, and without freeing their name or their resume record."""
        session = self.sessions.pop(uid, None)
        if session is None:
            return
        self.by_token.pop(session.token_hash, None)
        self._unsubscribe_all(session)
        self.seal()  # what the rooms said so far still reaches them
        for room in session.rooms:
            members = self.local.get(room, {})
            members.pop(uid, None)
            if not members:
                self.local.pop(room, None)
        link = session.link
        session.life.end()  # here: the other node carries on (no hooks, no name freed)
        if link is not None:
            self.send(link, ev.Bye(reason="resumed_elsewhere"))
            link.sink.close("resumed_elsewhere")
            await self.close(link, "resumed_elsewhere")

    async def tick(self) -> None:
        """Housekeeping, called about once a second: resume grace and retention expiry."""
        now = self.clock()
        self.new_per_address.prune(now)
        for session in list(self.sessions.values()):
            idle = session.life.idle(now)
            if idle is None:
                continue  # connected, or ended
            if idle > self.config.retention_seconds:
                await self.end_session(session)
            elif idle > self.config.resume_grace and session.present:
                await self._withdraw(session)
        for session in list(self.sessions.values()):  # unchanged records cost nothing
            await self.broker.save_session(record_of(session))
        await self._take_up_owed()
        for hook in self._ticks:
            await hook()

    # ---- requests --------------------------------------------------------------------------
    def delay(self, link: Link, request: rq.Request) -> float:
        """Seconds until `request` fits the sender's budget (the text interface waits)."""
        cost, now = self._cost(self._parse(link, request)), self.clock()
        return self._budget(link.session, now).wait(now, cost) if cost else 0.0

    def _budget(self, session: Session, now: float) -> TokenBucket:
        """The sender's bucket, forgiven what arrived while this node was stalled: requests
        read in a heap after a stall came at whatever pace the sender kept meanwhile, and
        charging them as if sent at once would punish an honest sender for our pause."""
        bucket = session.bucket
        stalled, until = self.stalls.overlap(max(bucket.stamp, session.created), now)
        if stalled > 0:
            bucket.forgive(stalled, until)
        return bucket

    def charge(self, link: Link, cost: float) -> None:
        """A cost known only after answering (how much a `who` or `resume` sent back): the
        sender's next requests wait for it (`TokenBucket.charge`)."""
        if cost > 0:
            link.session.bucket.charge(self.clock(), cost)

    def _parse(self, link: Link, request: rq.Request) -> rq.Request | Refused:
        """A `say` of a slash command becomes that command's request (or its usage error)."""
        if type(request) is not rq.Say or not is_command(request.text):
            return request
        try:
            return parse_command(request.text, request.room or link.session.current, request.ref)
        except UsageError as error:
            return Refused("bad_request", str(error))

    def _cost(self, request: rq.Request | Refused) -> float:
        """What the handler declared; a request nobody handles (or a command that does not
        parse) is charged one token like any other, and refunded when refused."""
        route = None if isinstance(request, Refused) else self._routes.get(type(request))
        if route is None:
            return 1.0
        cost = route.cost
        return float(cost) if isinstance(cost, int | float) else cost(request)

    async def handle(self, link: Link, request: rq.Request) -> None:
        """Run one request; every refusal becomes an `error` to the sender with its `ref`.

        Only what is accepted spends budget: the cost is taken first (so the text interface's
        pacing, `delay`, sees it) and given back when the request is refused, so that a
        corrected resend is not refused for the mistake before it.
        """
        self.count("requests")
        bucket, spent, answered = link.session.bucket, 0.0, link.replies
        try:
            parsed = self._parse(link, request)
            cost, now = self._cost(parsed), self.clock()
            if cost and not self._budget(link.session, now).take(now, cost):
                self.count("rate_limited")
                text = "slow down: you are sending faster than allowed"
                raise Refused("rate_limited", text, flood=True)
            spent = cost
            if isinstance(parsed, Refused):
                raise parsed
            await self._run(link, parsed, command=parsed is not request)
        except Refused as refused:
            refusal = refused  # `refused` is unbound after the except block
        except BrokerUnavailable:
            if link.replies != answered:  # answered already: its follow-up waits for a tick
                log.warning("after %s: a follow-up waits for the broker", type_name(type(request)))
                return
            refusal = Refused("unavailable", "delivery is interrupted; please try again shortly")
        else:
            return
        bucket.refund(spent)
        self.fail(link, refusal.code, refusal.message, request.ref)
        for hook in self._refused:  # e.g. crisis words in a refused message still get help
            await self._after_answer(hook(link, request, refusal), "a refusal")

    async def _run(self, link: Link, request: rq.Request, *, command: bool) -> None:
        """Who may send it, the features' checks, then the handler; Refused goes to `handle`."""
        route = self._routes.get(type(request))
        if route is None:
            raise Refused("unavailable", f"{type_name(type(request))} is not available")
        if not outranks(link.session.role, route.role):
            raise Refused("forbidden", forbidden(type(request), route.role, command=command))
        for check in self._checks:
            check(link, request)
        await route.handler(link, request)

    def fail(self, link: Link, code: ErrorCode, message: str, ref: str | None = None) -> None:
        self.count(f"error_{code}")
        self.send(link, ev.Error(code=code, message=message, ref=ref))

    def send(self, link: Link | None, event: ev.Event) -> None:
        if link is not None and link.open:
            link.sink.send(event)

    def reply(self, link: Link, event: ev.Event, request: rq.Request) -> None:
        event.ref = request.ref
        link.replies += 1
        self.send(link, event)

    # ---- what features ask of each other, through the chat ----------------------------------
    def check_say(self, session: Session, room: str, text: str) -> None:
        """May `session` say `text` in `room` now? Each feature's `check_say` may refuse."""
        for check in self._say_checks:
            check(session, room, text)

    def check_join(self, session: Session, room: str) -> None:
        for check in self._join_checks:
            check(session, room)

    async def said(self, session: Session, message: ev.Message) -> None:
        """`message` (published, with its id) goes to each feature's `after_say`."""
        for hook in self._said:
            await self._after_answer(hook(session, message), "a message")

    async def _after_answer(self, follow_up: Awaitable[None], what: str) -> None:
        """A feature's follow-up to a request already answered (a message that went out, a
        refusal sent): the broker being away must not answer it again. Each feature's tick
        takes up what it could not do (matching moves a crisis-flagged seeker ahead then)."""
        try:
            await follow_up
        except BrokerUnavailable:
            log.warning("after %s: a follow-up waits for the broker", what)

    async def left(self, session: Session, room: str) -> None:
        """`session` left `room` by choice."""
        for hook in self._left:
            await hook(session, room)

    async def resumed(self, session: Session) -> None:
        """`session` came back here and has had its replay: the features take them up again
        (a seeker's place, a listener's listening). `resumed` has answered the request, so
        the broker being away must not refuse it now: that waits for a tick that reaches it."""
        try:
            for hook in self._resumed:
                await hook(session)
        except BrokerUnavailable:
            self._resume_owed.add(session.uid)

    async def _take_up_owed(self) -> None:
        """Those whose `resumed` the features could not act on (the broker was away)."""
        if not self._resume_owed or not self.broker.healthy:
            return
        for uid in list(self._resume_owed):
            self._resume_owed.discard(uid)
            session = self.sessions.get(uid)
            if session is not None and session.link is not None:
                await self.resumed(session)

    def reported(self, reporter: str, reported: str) -> None:
        for hook in self._reported:
            hook(reporter, reported)

    def visible_to(self, message: ev.Message | ev.Deleted, uid: str) -> bool:
        """Whether a stored message (or its deletion) may be replayed or reported to `uid`
        (the visibility policy hides a shadow-muted person's messages from all but them)."""
        return message.uid == uid or not self.visibility.hidden(message.room, message.id)

    def subscribe(self, channel: str, session: Session) -> None:
        """`session` receives what is signalled on the node-internal `channel` (`!mods`)."""
        self.subscribers.setdefault(channel, {})[session.uid] = session

    def unsubscribe(self, channel: str, session: Session) -> None:
        members = self.subscribers.get(channel)
        if members is not None:
            members.pop(session.uid, None)
            if not members:
                del self.subscribers[channel]

    def _unsubscribe_all(self, session: Session) -> None:
        for channel in list(self.subscribers):
            self.unsubscribe(channel, session)

    # ---- fan-out (called by the broker, for every node) ------------------------------------
    def deliver_room(self, room: str, event: ev.Event, sender: str | None, ref: str | None) -> None:
        """Queue `event` for every local member of `room`: the hot path, kept flat. With a
        transport that batches, the event joins this turn's `Batch` instead (see `seal`)."""
        members = self.local.get(room)
        batching = self.batching
        if members and batching is not None:
            batch = self._batch
            if batch is None or batch.room != room:
                self.seal()  # one room at a time: what is sent keeps its order
                batch = self._batch = Batch(room, members)
            batch.add(event, sender, ref, self._hidden(room, event, sender))
            if type(event) is ev.Message:
                self.count("messages_delivered", len(members))
            batching()
            return
        members = members or self.subscribers.get(room)
        if not members:
            channel = self._channels.get(room)  # a node-internal channel (`!…`), never a room
            if channel is not None:
                channel(event)
            return
        hidden = self._hidden(room, event, sender)
        for session in members.values():
            _hand_to(session, room, event, sender, ref, hidden)
        if type(event) is ev.Message:
            self.count("messages_delivered", len(members))

    def _hidden(self, room: str, event: ev.Event, sender: str | None) -> bool:
        """Whether only its sender sees `event`: a shadow-muted person's message, or the
        deletion of one (nobody else had it)."""
        if type(event) is ev.Message:
            return self.visibility.silenced(sender)
        if isinstance(event, ev.Deleted):
            return self.visibility.hidden(room, event.id)
        return False

    def seal(self) -> bool:
        """Hand this turn's batch to the room's members; whether it held more than one event.

        Who gets what is decided here, as `deliver_room` would have per event: a member it
        all goes to unchanged, through a transport that shares renderings, gets the batch
        whole (`Sink.send_batch`); anyone else (its sender, someone ignoring a sender, held
        behind a reply, another transport) gets the events one at a time."""
        batch = self._batch
        if batch is None:
            return False
        self._batch = None
        room, events, senders, plain = batch.room, batch.events, batch.senders, batch.plain
        for session in batch.members.values():
            life = session.life
            link = life.link
            if link is None:
                continue
            sink = link.sink
            ignored = session.ignored
            if (
                plain
                and sink.shares
                and life.held is None
                and session.uid not in senders
                and (not ignored or senders.isdisjoint(ignored))
            ):
                sink.send_batch(batch)
                continue
            for event, sender, ref, hidden in events:  # as `deliver_room` without a batch
                _hand_to(session, room, event, sender, ref, hidden)
        return len(events) > 1

    def deliver_direct(self, uid: str, event: ev.Event) -> Awaitable[None] | None:
        """From the broker. A feature's `on_direct` may take the event over (matching enters
        the room a `matched` names first): then the broker awaits what it returns, in order."""
        session = self.sessions.get(uid)
        if session is None:
            return None
        for hook in self._directs:
            taken = hook(session, event)
            if taken is not None:
                return taken
        self.direct(session, event)
        return None

    def direct(self, session: Session, event: ev.Event) -> None:
        """An event for one person, not a room's (matched, ended, alert, ...): held behind a
        resume's replay like room events, or, while they are away within their resume
        window, kept to follow the replay when they come back (`Life.direct`)."""
        session.life.direct(event)

    def broadcast(self, text: str) -> None:
        """A server announcement to every connected peer on this node."""
        notice = ev.Notice(kind="announce", text=text)
        for link in list(self.links):
            self.send(link, notice)

    # ---- rooms -----------------------------------------------------------------------------
    async def enter(self, session: Session, room: str, *, announce: bool = True) -> int:
        if room not in session.since:  # read first: anything newer arrives live or replays
            session.since[room] = await self.broker.last_id(room)
        # Listed before the broker call: a message published the moment the join lands
        # (delivered while we wait, with a shared broker) must find them here.
        self.seal()  # what the room said before they came is not theirs
        members = self.local.setdefault(room, {})
        members[session.uid] = session
        try:
            count = await self.broker.join_room(room, session.member())
        except BaseException:
            if room not in session.rooms:
                members.pop(session.uid, None)
            raise
        if room not in session.rooms:
            session.rooms.append(room)
        session.current = room
        if announce:
            await self.announce(session, room, "join", count)
        return count

    async def exit(self, session: Session, room: str) -> int:
        count = await self.broker.leave_room(room, session.uid)
        self.seal()  # what the room said while they were in is still theirs
        members = self.local.get(room, {})
        members.pop(session.uid, None)
        if not members:
            self.local.pop(room, None)
        _forget_room(session, room)
        await self.announce(session, room, "leave", count)
        return count

    async def take_out(self, session: Session, room: str) -> None:
        """Out of `room` not by their choice (a one-to-one chat ended). Their resume still
        to come replays it to its end; withdrawn, it is dropped from the rooms resume
        would enter again, so a finished private chat never comes back."""
        if room not in session.rooms:
            return
        if session.life.replay_to_come:
            first = session.since.get(room, 0)
            session.life.departing(room, first, await self.broker.last_id(room))
        if session.present:
            await self.exit(session, room)
        else:
            _forget_room(session, room)

    async def _withdraw(self, session: Session) -> None:
        """Resume grace over: show the person as gone, but keep what resume needs."""
        rooms, since = list(session.rooms), dict(session.since)
        for room in rooms:
            await self.exit(session, room)
        session.rooms, session.since = rooms, since
        session.life.withdraw()

    async def reenter(self, session: Session) -> None:
        """A withdrawn person resumed: into their rooms again, shown to the others."""
        rooms, session.rooms = list(session.rooms), []
        for room in rooms:
            await self.enter(session, room)

    async def show_presence(self, session: Session, what: str) -> None:
        """`session` lost its connection (`away`, within the resume grace) or has it again
        (`back`): their entry in each of their rooms says so, and the room is told."""
        for room in list(session.rooms):
            count = await self.broker.join_room(room, session.member())
            await self.announce(session, room, what, count)

    async def announce(
        self, session: Session, room: str, what: str, count: int, old: str | None = None
    ) -> None:
        if count > self.config.presence_limit and what != "nick":
            return  # in a crowd, comings and goings are noise; counts stay in who/joined
        away = sum(1 for m in await self.broker.members(room) if m.away)
        presence = ev.Presence(
            room=room,
            event=what,
            uid=session.uid,
            name=session.name,
            count=count,
            old=old,
            away=min(away, count),
        )
        await self.broker.signal(room, presence, session.uid)


def _hand_to(
    session: Session, room: str, event: ev.Event, sender: str | None, ref: str | None, hidden: bool
) -> None:
    """One member's copy of a room event, if it is theirs to see: their own message echoed
    (with its `ref`) only where the interface shows it, presence and the like never to its
    subject; a hidden event, or one from someone they ignore, not at all. Held behind a reply
    or a resume's replay, it waits its turn."""
    link = session.life.link
    if link is None:
        return
    out = event
    if session.uid == sender:
        if type(event) is not ev.Message or not link.sink.echoes_own:
            return
        out = msgspec.structs.replace(event, ref=ref) if ref else event
    elif hidden or (session.ignored and sender in session.ignored):
        return
    if session.life.held is None:
        link.sink.send(out)
    else:
        session.life.hold_back(room, out)


def _forget_room(session: Session, room: str) -> None:
    """`room` is no longer one of theirs (the chat's membership is the caller's)."""
    if room in session.rooms:
        session.rooms.remove(room)
    session.since.pop(room, None)
    if session.current == room:
        session.current = session.rooms[-1] if session.rooms else None


def record_of(session: Session) -> SessionRecord:
    """What the broker keeps so that any node can adopt this person on resume."""
    return SessionRecord(
        token_hash=session.token_hash,
        uid=session.uid,
        name=session.name,
        role=session.role,
        rooms=tuple(session.rooms),
        current=session.current,
        ignored=tuple(sorted(session.ignored)),
        crisis=session.crisis,
        region=session.region,
        since=dict(session.since),
        departed=dict(session.life.departed),
    )


@dataclass(frozen=True, slots=True)
class Route:
    """How the dispatcher runs one request type: its handler and what it declared."""

    handler: Handler
    role: Role | None
    cost: Cost


def _routes(features: Sequence[Feature]) -> dict[type[rq.Request], Route]:
    """Request type -> the handler a feature declared for it (one each)."""
    routes: dict[type[rq.Request], Route] = {}
    for feature in features:
        for declared, handler in feature.handlers():
            for kind in declared.kinds:
                if kind in routes:
                    raise ValueError(f"two features handle {kind.__name__}")
                routes[kind] = Route(handler, declared.role, declared.cost)
    return routes


def forbidden(kind: type[rq.Request], role: Role | None, *, command: bool) -> str:
    """Why a request is refused to someone without `role`, in the words of its interface."""
    if command:
        return f"/{type_name(kind)} is for {role}s"
    return f"only {ROLE_NAMES[role] if role else 'staff'} can do that"
