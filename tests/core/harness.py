"""The socket-free harness for core rules (matching, moderation, resume, flood...): a real
Chat and memory broker on a Clock moved by hand (no sleeping), a Recorder as each person's
Sink (what a transport would write), and staff tokens. What did not happen is shown by what
the Recorder holds once `handle`/`tick` has returned: the core answers before it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from chatsupport.broker.memory import MemoryBroker
from chatsupport.config import Config
from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.core.batch import Batch
from chatsupport.core.chat import Chat
from chatsupport.core.roles import Roles, hash_line, parse_tokens
from chatsupport.core.session import Link
from chatsupport.server import features

MOD, LISTENER, LISTENER_2 = "mod-token", "listener-token", "listener-token-2"
E = TypeVar("E", bound=ev.Event)


class Clock:
    """Time for the Chat and its broker, moved only by the test (`clock.now += 61`)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A Sink that keeps what it was sent; also the resume token its welcome gave."""

    interface = "json"
    echoes_own = True
    can_resume = True
    shares = True  # takes a room's batch whole when the test turns batching on

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.closed: str | None = None
        self.backlogged = False  # a test sets it: the peer has not read what was sent
        self.waiting: list[Callable[[], Awaitable[None]]] = []  # `when_drained` steps
        self.token = ""

    def send(self, event: ev.Event) -> None:
        if isinstance(event, ev.Welcome):
            self.token = event.session
        self.events.append(event)

    def send_batch(self, batch: Batch) -> None:
        self.events.extend(event for event, *_ in batch.events)

    def close(self, reason: str) -> None:
        self.closed = reason

    def when_drained(self, step: Callable[[], Awaitable[None]]) -> None:
        self.waiting.append(step)

    async def drain(self) -> None:
        """The peer read everything: the step that waited for it runs (as a transport would)."""
        self.backlogged = False
        steps, self.waiting = self.waiting, []
        for step in steps:
            await step()

    def take(self) -> list[ev.Event]:
        """Everything received since the last `take` (and forgets it)."""
        events, self.events = self.events, []
        return events

    def of(self, kind: type[E]) -> list[E]:
        """The events of `kind` received since the last `take`, taken with the rest."""
        return [e for e in self.take() if isinstance(e, kind)]


async def make_chat(**overrides: Any) -> tuple[Chat, Clock]:
    clock = Clock()
    config = Config(**{"probation_seconds": 0, **overrides})
    broker = MemoryBroker(config.retention_seconds, config.retention_messages, clock)
    chat = Chat(config, broker, features(config), clock=clock, wallclock=clock)
    lines = [hash_line("mod", MOD), hash_line("listener", LISTENER)]
    lines.append(hash_line("listener", LISTENER_2))
    chat.feature(Roles).entries = parse_tokens("\n".join(lines))
    await chat.start()
    return chat, clock


async def person(chat: Chat, key: str = "address-a", client: str = "") -> tuple[Link, Recorder]:
    sink = Recorder()
    link = await chat.open(sink, key, client_key=client)
    sink.take()
    return link, sink


async def staff(chat: Chat, token: str = MOD, key: str = "address-staff") -> tuple[Link, Recorder]:
    link, sink = await person(chat, key)
    await chat.handle(link, rq.Auth(token=token))
    sink.take()
    return link, sink


async def moderator(chat: Chat) -> tuple[Link, Recorder]:
    return await staff(chat, MOD, "address-mod")


async def listening(chat: Chat, token: str = LISTENER) -> tuple[Link, Recorder]:
    link, sink = await staff(chat, token, "address-" + token)
    await chat.handle(link, rq.Listen(on=True))  # what it brings (a match) stays in `sink`
    return link, sink


def errors(sink: Recorder) -> list[str]:
    return [e.code for e in sink.take() if isinstance(e, ev.Error)]
