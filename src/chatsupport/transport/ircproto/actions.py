"""What the IRC protocol layer hands the transport, and the settings it runs with.

`IrcConnection.take` returns these in order; the transport carries each out before the
next (see connection.py). Requests to the core carry a `ref` naming the IRC command they
came from (`ref("JOIN", "lobby")` is `JOIN:lobby`): the core sends it back with the reply
or the error, so each is rendered as that command's numeric without any state kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core import requests as rq
from .history import HistoryQuery
from .message import Line

if TYPE_CHECKING:
    from .connection import IrcConnection

# Capabilities offered, with their CAP LS 302 values.
CAPS: dict[str, str] = {
    "batch": "",
    "draft/chathistory": "",
    "echo-message": "",
    "message-tags": "",
    "sasl": "PLAIN",
    "server-time": "",
}
SASL_CHUNK = 400
SASL_MAX = 4 * SASL_CHUNK  # a PLAIN payload longer than this is refused (905)
# `ref` kinds: which IRC command a request came from (`KIND:target`).
REG_NICK, PASS, SASL, RESUME = "REG", "PASS", "SASL", "RESUME"


@dataclass(frozen=True, slots=True)
class IrcSettings:
    server: str = "chatsupport"
    network: str = "ChatSupport"
    version: str = "chatsupport"
    created: str = "today"
    max_name: int = 24
    max_rooms: int = 10
    history_limit: int = 100  # messages per CHATHISTORY request
    retention_minutes: int = 10
    max_partial: int = 65536  # input without a line end past this ends the connection


@dataclass(frozen=True, slots=True)
class Open:
    resume: str | None


@dataclass(frozen=True, slots=True)
class ToCore:
    request: rq.Request


@dataclass(frozen=True, slots=True)
class Fetch:
    query: HistoryQuery


@dataclass(frozen=True, slots=True)
class Resume:
    token: str
    client_fetches: bool
    rooms: tuple[str, ...] = ()  # the rooms the session is in


@dataclass(frozen=True, slots=True)
class Close:
    reason: str


Output = bytes | Open | ToCore | Fetch | Resume | Close
Command = Callable[["IrcConnection", Line], None]


@dataclass(frozen=True, slots=True)
class Spec:
    """An IRC command: its handler, how many parameters it needs, whether it needs a
    registered client (commands.py builds the table)."""

    handler: Command
    min_params: int = 0
    registered: bool = True


def ref(kind: str, target: str = "") -> str:
    return f"{kind}:{target}"


def ref_kind(value: str | None) -> tuple[str, str]:
    kind, _, target = (value or "").partition(":")
    return kind, target
