"""Roles from the tokens file: `listener` or `mod`, granted by `auth {token}` / `/auth TOKEN`.

The file holds one role and a salted hash of its token per line (`mod sha256$SALT$HASH`);
tokens are random and long, so a salted SHA-256 is enough, and the token itself is never
stored: `chatsupport token add` prints it once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from . import events as ev
from . import requests as rq
from . import staff
from .chat import Refused
from .feature import Feature, handles
from .limits import WindowCounter
from .session import Link

ROLES = ("listener", "mod")
FAILURES_ALLOWED = 5  # wrong tokens per address per window before auth is refused for a while
FAILURE_WINDOW = 600.0


@dataclass(frozen=True, slots=True)
class TokenEntry:
    role: str
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
        role, _, hashed = line.partition(" ")
        scheme, _, rest = hashed.strip().partition("$")
        salt, _, digest = rest.partition("$")
        if role not in ROLES or scheme != "sha256" or not salt or len(digest) != 64:
            raise ValueError(f"{source}:{number}: expected 'listener|mod sha256$SALT$HASH'")
        entries.append(TokenEntry(role, salt, digest))
    return entries


def load_tokens(path: str | None) -> list[TokenEntry]:
    if not path:
        return []
    return parse_tokens(Path(path).read_text(encoding="utf-8"), path)


def add_token_command(role: str, tokens_file: str) -> int:
    """`chatsupport token add`: append a new token's hash; print the token once."""
    token = secrets.token_urlsafe(32)
    path = Path(tokens_file)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(hash_line(role, token) + "\n")
    path.chmod(0o600)
    print(f"New {role} token (shown once; keep it secret):\n{token}")
    return 0


class Roles(Feature):
    """Signing in as staff: the token entries, and who has been failing to sign in."""

    def __init__(self, entries: list[TokenEntry]) -> None:
        self.entries = entries
        self.failures = WindowCounter(FAILURES_ALLOWED, FAILURE_WINDOW)

    def role_for(self, token: str) -> str | None:
        found = None
        for entry in self.entries:  # check all: time does not tell which line matched
            if entry.matches(token):
                found = entry.role
        return found

    @handles(rq.Auth)
    async def auth(self, link: Link, request: rq.Auth) -> None:
        chat = self.chat
        key = link.address_key or link.session.uid
        if self.failures.full(key, chat.clock()):  # locked out: not even a right guess is told
            raise Refused("rate_limited", "too many wrong tokens; try again later")
        role = self.role_for(request.token.strip())
        if role is None:
            self.failures.hit(key, chat.clock())
            raise Refused("forbidden", "that token is not valid")
        session = link.session
        session.role = role
        staff.enlist(chat, session)  # from now on they receive reports / alerts
        for room in session.rooms:
            await chat.broker.join_room(room, session.member())
        label = "a moderator" if role == "mod" else "a listener"
        text = f"you are signed in as {label}"
        chat.reply(link, ev.Notice(kind="auth", text=text, name=role), request)

    async def on_tick(self) -> None:
        self.failures.prune(self.chat.clock())  # records of failures past their window go
