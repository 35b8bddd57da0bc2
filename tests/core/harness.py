"""A socket-free Chat for core rules: a real Chat and memory broker on a clock moved by
hand, a Recorder as each person's Sink (what a transport would write), staff tokens."""

from __future__ import annotations

from typing import Any, TypeVar

from chatsupport.broker.memory import MemoryBroker
from chatsupport.config import Config
from chatsupport.core import events as ev
from chatsupport.core import requests as rq
from chatsupport.core.chat import Chat
from chatsupport.core.roles import Roles, hash_line, parse_tokens
from chatsupport.core.session import Link
from chatsupport.server import features

from .test_moderation_core import Clock
from .test_moderation_core import Recorder as BaseRecorder

MOD, LISTENER, LISTENER_2 = "mod-token", "listener-token", "listener-token-2"
E = TypeVar("E", bound=ev.Event)


class Recorder(BaseRecorder):
    """A Sink that keeps what it was sent; also the resume token its welcome gave."""

    def __init__(self) -> None:
        super().__init__()
        self.token = ""

    def send(self, event: ev.Event) -> None:
        if isinstance(event, ev.Welcome):
            self.token = event.session
        super().send(event)

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


async def person(chat: Chat, key: str = "address-a") -> tuple[Link, Recorder]:
    sink = Recorder()
    link = await chat.open(sink, key)
    sink.take()
    return link, sink


async def staff(chat: Chat, token: str = MOD, key: str = "address-staff") -> tuple[Link, Recorder]:
    link, sink = await person(chat, key)
    await chat.handle(link, rq.Auth(token=token))
    sink.take()
    return link, sink


async def listening(chat: Chat, token: str = LISTENER) -> tuple[Link, Recorder]:
    link, sink = await staff(chat, token, "address-" + token)
    await chat.handle(link, rq.Listen(on=True))  # what it brings (a match) stays in `sink`
    return link, sink


def errors(sink: Recorder) -> list[str]:
    return [e.code for e in sink.take() if isinstance(e, ev.Error)]
