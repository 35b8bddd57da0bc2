"""This node's connection to Redis: the client and its scripts, the subscription, staying
connected (reconnect with backoff, then resynchronise), whether Redis is reachable, and the
one guard every request goes through while it may not be.

The guard has two modes, one per kind of broker method (core/ports.py says which is which):
`raises_unavailable` turns a lost Redis into `BrokerUnavailable` (the request is refused),
`degrades(local)` answers from this node's own view instead. Either way the first failure
marks Redis as away; the health handler hears of each change once, and so does the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...core.ports import BrokerUnavailable, HealthHandler
from . import scripts

log = logging.getLogger("chatsupport.broker.redis")

LEASE = 10.0  # a node not heard from for this long is dead (URL option `lease`)
COMMAND_TIMEOUT = 3.0  # a Redis that answers nothing for this long counts as down
MAX_CONNECTIONS = 32  # per node; requests beyond it wait their turn (up to COMMAND_TIMEOUT)
BACKOFF_MIN = 0.05  # first reconnection delay; doubles up to BACKOFF_MAX
BACKOFF_MAX = 2.0
UNREACHABLE = "redis is unreachable"


class Forgotten(Exception):
    """Redis no longer knows this node (it restarted, or we were silent past the lease)."""


# What "Redis is away" looks like, whichever call noticed it.
DOWN = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError, Forgotten)


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


class Link:
    """One node's connection to Redis, shared by every part of the broker."""

    def __init__(self, options: Options, node: str) -> None:
        self.node = node
        self.prefix = options.prefix
        self.lease = options.lease
        self.channel = self.prefix + "events"
        pool = BlockingConnectionPool.from_url(
            options.url,
            max_connections=MAX_CONNECTIONS,  # a burst of requests waits for a connection
            timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # we notice failures ourselves, then resynchronise
            socket_timeout=COMMAND_TIMEOUT,
            socket_connect_timeout=COMMAND_TIMEOUT,
            client_name=f"chatsupport-{node}",  # operators (and tests) can tell nodes apart
        )
        self.redis = Redis(connection_pool=pool)
        self.scripts = scripts.register(self.redis)
        self.up = False  # false while Redis cannot be reached (and before the first connect)
        self.on_health: HealthHandler | None = None
        self.stopping = False
        self._said_down = False  # the health handler heard `down` and not yet `up`
        self._pubsub: PubSub | None = None
        self._broken = asyncio.Event()

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def where(self) -> str:
        """Where Redis is, for messages: host and port, never a password."""
        kwargs = self.redis.connection_pool.connection_kwargs
        if "path" in kwargs:
            return str(kwargs["path"])
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"

    async def run(self, script: str, keys: Iterable[str] = (), args: Iterable[Any] = ()) -> Any:
        """Run a script whatever our state: for resynchronising and background work. A
        request's call goes through `guard` (through the two decorators below)."""
        return await self.scripts[script](keys=list(keys), args=list(args))

    async def run_each(self, script: str, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """Run one script per (keys, args), in order, in one pipeline (one round trip);
        each result is its answer or its error. Loaded again if Redis forgot it, in which
        case none of them ran."""
        loaded = self.scripts[script]
        for _ in range(2):
            pipe = self.redis.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(loaded.sha, len(keys), *keys, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
            if not any(isinstance(r, NoScriptError) for r in results):
                return results
            loaded.sha = await self.redis.script_load(loaded.script)
        return results

    # ---- the guard -------------------------------------------------------------------------
    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """The one place a failed Redis call is judged: refused at once while Redis is away;
        a lost connection marks it away; a refusal (e.g. out of memory) fails this call only.
        Each ends as `BrokerUnavailable`."""
        if not self.up:
            raise BrokerUnavailable(UNREACHABLE)
        try:
            yield
        except DOWN as error:
            self.lost(error)
            raise BrokerUnavailable(UNREACHABLE) from error
        except RedisError as error:
            log.error("redis refused %s: %s", what, error)
            raise BrokerUnavailable(str(error)) from error

    def lost(self, error: BaseException) -> None:
        """Redis is away: the supervisor reconnects and resynchronises. Said once per outage."""
        self._broken.set()
        if self.stopping or not self.up:
            return
        self.up = False
        log.warning("redis unreachable (%s): delivery interrupted", type(error).__name__)
        self._said_down = True
        if self.on_health is not None:
            self.on_health(False)

    def _restored(self) -> None:
        self.up = True
        if self._said_down:
            self._said_down = False
            log.info("redis reachable again: delivery restored")
            if self.on_health is not None:
                self.on_health(True)

    # ---- staying connected -----------------------------------------------------------------
    async def connect(self, resync: Callable[[], Awaitable[None]]) -> None:
        """A fresh subscription, then `resync` (everything written back, missed messages
        delivered), then up."""
        await self._close_pubsub()
        await self.redis.connection_pool.disconnect()  # connections to a Redis now gone
        self._broken.clear()
        pubsub = self.redis.pubsub()
        self._pubsub = pubsub
        await pubsub.subscribe(self.channel)
        # Only once Redis confirms the subscription is nothing missed between catch-up and live.
        async with asyncio.timeout(COMMAND_TIMEOUT):
            while (await pubsub.get_message(timeout=COMMAND_TIMEOUT)) is None:
                pass
        await resync()
        if self._broken.is_set():  # lost again while writing back: start over
            raise RedisConnectionError("connection lost while resynchronising")
        self._restored()

    async def stay_connected(
        self,
        resync: Callable[[], Awaitable[None]],
        dispatch: Callable[[bytes], Awaitable[None]],
    ) -> None:
        """Listen; when Redis goes away, reconnect with jittered exponential backoff."""
        delay = BACKOFF_MIN
        while True:
            if not self.up:
                try:
                    await self.connect(resync)
                    delay = BACKOFF_MIN
                except (*DOWN, RedisError) as error:
                    self.lost(error)
                    await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                    delay = min(delay * 2, BACKOFF_MAX)
                    continue
            try:
                await self._listen(dispatch)
                raise RedisConnectionError("subscription interrupted")  # _listen only ends so
            except (*DOWN, RedisError) as error:
                self.lost(error)

    async def _listen(self, dispatch: Callable[[bytes], Awaitable[None]]) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while not self._broken.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None and message.get("type") == "message":
                await dispatch(message["data"])

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            # redis-py < 6 leaves aclose() untyped and later versions type it: calling it
            # through a typed name checks the same on every version we accept.
            close: Callable[[], Awaitable[None]] = pubsub.aclose
            with contextlib.suppress(*DOWN, RedisError):
                await close()

    async def close(self) -> None:
        self.up = False
        await self._close_pubsub()
        await self.redis.aclose(close_connection_pool=True)


# ---- the guard's two modes, for the broker's parts (each has a `link`) ----------------------
class UsesLink(Protocol):
    @property
    def link(self) -> Link: ...


S = TypeVar("S", bound=UsesLink)
P = ParamSpec("P")
T = TypeVar("T")
Method = Callable[Concatenate[S, P], Awaitable[T]]


def raises_unavailable(method: Method[S, P, T]) -> Method[S, P, T]:
    """Raises `BrokerUnavailable` while Redis is away (the request gets `unavailable`)."""

    @functools.wraps(method)
    async def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self.link.guard(method.__name__):
            return await method(self, *args, **kwargs)

    return guarded


def degrades(
    local: Callable[Concatenate[S, P], T],
) -> Callable[[Method[S, P, T]], Method[S, P, T]]:
    """While Redis is away the method answers `local(...)`: this node's own view."""

    def wrap(method: Method[S, P, T]) -> Method[S, P, T]:
        @functools.wraps(method)
        async def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                with self.link.guard(method.__name__):
                    return await method(self, *args, **kwargs)
            except BrokerUnavailable:
                return local(self, *args, **kwargs)

        return guarded

    return wrap
