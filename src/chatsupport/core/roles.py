"""Roles from the tokens file: `listener` or `mod`, granted by `auth {token}` / `/auth TOKEN`.

The file holds one role and a salted hash of its token per line (`mod sha256$SALT$HASH`);
tokens are random and long, so a salted SHA-256 is enough, and the token itself is never
stored: `chatsupport token add` (cli.py) prints it once. The file is read at the edge
(chatsupport/loading.py); this module parses its text and checks tokens against it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from . import events as ev
from . import requests as rq
from . import staff
from .chat import Refused
from .feature import Feature, handles
from .limits import WindowCounter
from .moderation import duration
from .session import Link, Session
from .vocabulary import Role, as_role

# Wrong tokens one person (their session, whatever connection it is on) may try per window
# before `auth` waits. Per person, not per address: others on the same network (a school,
# a shelter) sign in as usual. A guesser's fresh sessions are bounded by the per-address
# new-connection limit, and a token is 256 random bits.
FAILURES_ALLOWED = 5
FAILURE_WINDOW = 600.0


@dataclass(frozen=True, slots=True)
class TokenEntry:
    role: Role
    salt: str
    digest: str

    def matches(self, token: str) -> bool:
        return hmac.compare_digest(self.digest, _digest(self.salt, token))


def _digest(salt: str, token: str) -> str:
    return hashlib.sha256(f"{salt}:{token}".encode()).hexdigest()


def hash_line(role: str, token: str) -> str:
    salt = secrets.token_hex(8)
    return f"{role} sha256${salt}${_digest(salt, token)}"


def parse_tokens(text: str, source: str = "tokens file") -> list[TokenEntry]:
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, hashed = line.partition(" ")
        scheme, _, rest = hashed.strip().partition("$")
        salt, _, digest = rest.partition("$")
        role = as_role(word)
        if role is None or scheme != "sha256" or not salt or len(digest) != 64:
            raise ValueError(f"{source}:{number}: expected 'listener|mod sha256$SALT$HASH'")
        entries.append(TokenEntry(role, salt, digest))
    return entries


class Roles(Feature):
    """Signing in as staff: the token entries, and who has been failing to sign in."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self.entries = entries
        self.failures = WindowCounter(FAILURES_ALLOWED, FAILURE_WINDOW)

    def role_for(self, token: str) -> Role | None:
        found = None
        for entry in self.entries:  # check all: time does not tell which line matched
            if entry.matches(token):
                found = entry.role
        return found

    def on_restore(self, session: Session) -> None:
        """Staff who resumed here from another node receive reports and alerts here."""
        staff.enlist(self.chat, session)

    @handles(rq.Auth)
    async def auth(self, link: Link, request: rq.Auth) -> None:
        chat, session = self.chat, link.session
        wait = self.failures.retry_in(session.uid, chat.clock())
        if wait > 0:  # locked out: not even a right guess is told
            text = f"too many wrong tokens; try again in {duration(wait)}"
            raise Refused("rate_limited", text)
        role = self.role_for(request.token.strip())
        if role is None:
            self.failures.hit(session.uid, chat.clock())
            raise Refused("forbidden", "that token is not valid")
        session.role = role
        staff.enlist(chat, session)  # from now on they receive reports / alerts
        for room in session.rooms:
            await chat.broker.join_room(room, session.member())
        label = "a moderator" if role == "mod" else "a listener"
        text = f"you are signed in as {label}"
        chat.reply(link, ev.Notice(kind="auth", text=text, name=role), request)

    async def on_tick(self) -> None:
        self.failures.prune(self.chat.clock())  # records of failures past their window go

    async def on_end(self, session: Session) -> None:
        self.failures.clear(session.uid)
