"""Features: what the chat does beyond its registry, rooms and fan-out, each one an object.

A feature owns its state (attributes), its request handlers (methods marked `@handles`)
and the hooks it needs: the optional methods of `Feature` below. The Chat calls each
hook in the order of its feature list, written once where the server is wired
(`server.features`), so an order that matters (safety sets the crisis flag before
matching reads it) is written there, not left to the import graph. A hook a feature
does not override is never called: the hot paths only walk the features that care.

A feature reaches the chat (and, through it, the broker) as `self.chat`, set by `bind`
when the Chat is made; another feature it needs is `self.chat.feature(Kind)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from . import events as ev
from . import requests as rq
from .session import Link, Session
from .vocabulary import Role

if TYPE_CHECKING:
    from .chat import Chat, Refused

Handler = Callable[[Link, Any], Awaitable[None]]  # a bound handler: (link, its request)
H = TypeVar("H", bound=Callable[..., Awaitable[None]])
Channel = Callable[[ev.Event], None]  # what a node-internal channel's signal does here


Cost = float | Callable[[Any], float]  # tokens from the sender's budget, or how to count them
ROLE_RANK: dict[Role | None, int] = {None: 0, "listener": 1, "mod": 2}  # a mod may do a listener's


def outranks(role: Role | None, needed: Role | None) -> bool:
    """Whether someone with `role` may do what needs `needed` (None: anyone)."""
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[needed]


@dataclass(frozen=True, slots=True)
class Declared:
    """What `@handles` says of a handler: the request types it takes, who may send them
    and what they cost. The Chat's dispatcher checks both, once, for a JSON request and
    a slash command alike (a command is parsed into its request first)."""

    kinds: tuple[type[rq.Request], ...]
    role: Role | None
    cost: Cost


def handles(
    *kinds: type[rq.Request], role: Role | None = None, cost: Cost = 1.0
) -> Callable[[H], H]:
    """Mark a feature's method as the handler of `kinds` (collected when the Chat is made).

    `role`: "listener" or "mod" (a mod may do what a listener may); None: anyone.
    `cost`: tokens taken from the sender's budget (0: free, for requests that broadcast
    nothing), or a function of the request (a long message costs more).
    """
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}")

    def mark(method: H) -> H:
        setattr(method, "__handles__", Declared(kinds, role, cost))  # noqa: B010
        return method

    return mark


class Visibility:
    """Which messages reach only their author (a shadow-mute); by default, none.

    One feature (moderation) may provide it (`Feature.visibility`); the Chat asks it on
    every room message it delivers, so both questions must be answered from memory.
    """

    __slots__ = ()

    def silenced(self, uid: str | None) -> bool:
        """Whether what `uid` says now reaches only themselves."""
        return False

    def hidden(self, room: str, message_id: int) -> bool:
        """Whether a stored message is never replayed or reported (its author still sees it)."""
        return False


class Feature:
    """Base of every feature; override the hooks you need (each is optional)."""

    chat: Chat

    def bind(self, chat: Chat) -> None:
        """Called once, by the Chat this feature belongs to, before anything else."""
        self.chat = chat

    def handlers(self) -> Iterator[tuple[Declared, Handler]]:
        """This feature's `@handles` methods, bound to it."""
        for name in dir(type(self)):
            declared = getattr(getattr(type(self), name, None), "__handles__", None)
            if isinstance(declared, Declared):
                yield declared, getattr(self, name)

    # ---- hooks (called in feature order) ----------------------------------------------------
    def admit(self, address_key: str) -> ev.Error | None:
        """A new connection: called with the keyed hash of its network, then again with the
        keyed hash of the id its client holds (if it sent one); an error refuses it early."""
        return None

    def helplines(self) -> list[dict[str, Any]] | None:
        """Help lines anyone may be shown, even someone refused at the door (at most one
        feature, safety, offers them)."""
        return None

    def on_new(self, session: Session) -> None:
        """A new person, before their `welcome`."""

    def on_restore(self, session: Session) -> None:
        """A person another node held is rebuilt here for their resume (role and ignore
        list as they were), before they enter their rooms again."""

    def check(self, link: Link, request: rq.Request) -> None:
        """Before every handler; raise `Refused` to refuse the request."""

    def check_say(self, session: Session, room: str, text: str) -> None:
        """Before a message is published; raise `Refused` to refuse it."""

    def check_join(self, session: Session, room: str) -> None:
        """Before someone enters a room by `join`; raise `Refused` to refuse it."""

    async def after_say(self, session: Session, message: ev.Message) -> None:
        """A message was published (it has its id)."""

    async def on_leave(self, session: Session, room: str) -> None:
        """Someone left a room by choice (`leave`)."""

    async def on_resume(self, session: Session) -> None:
        """`session` came back on this node (a `resume`): what it missed has been replayed."""

    async def on_end(self, session: Session) -> None:
        """A session ended for good (no resume); it is no longer in `chat.sessions`."""

    async def on_tick(self) -> None:
        """Housekeeping, about once a second, after the Chat's own."""

    def on_direct(self, session: Session, event: ev.Event) -> Awaitable[None] | None:
        """An event for one person that came through the broker: None to let it be
        delivered as usual, or an awaitable that acts first and delivers it itself."""
        return None

    async def on_refused(self, link: Link, request: rq.Request, refusal: Refused) -> None:
        """`request` (as sent: a slash command not yet parsed) of `link`'s was refused
        (`refusal.code`; `refusal.flood`: for being over the message budget)."""

    def on_report(self, reporter: str, reported: str) -> None:
        """`reporter` reported `reported` (uids)."""

    def channels(self) -> Mapping[str, Channel]:
        """Node-internal channels (`!name`) this feature listens to, without members."""
        return {}

    def visibility(self) -> Visibility | None:
        """The visibility policy, if this feature provides it (at most one does)."""
        return None


F = TypeVar("F", bound=Feature)


def implementing(features: Sequence[Feature], hook: str) -> list[Any]:
    """The bound `hook` methods of the features that override it, in feature order."""
    base = getattr(Feature, hook)
    return [getattr(f, hook) for f in features if getattr(type(f), hook) is not base]
