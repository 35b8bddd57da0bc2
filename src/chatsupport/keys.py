"""The operator's secret and every key derived from it.

One secret (`--address-key-file` or `CHATSUPPORT_ADDRESS_KEY`) keys everything a node
must agree on with the others without telling them: the hash of network addresses, and
the broker's shared secrets (the reporter alias). Every node derives the same keys from
it with HMAC and a label, so nothing secret is ever written to Redis: someone holding a
copy of Redis holds hashes, never a key that opens them (docs/privacy.md).

Address hashes, in two layers:

- the *root* hash `HMAC(root key, address)` stays in the memory of the node that saw the
  connection (connection slots, sign-in failures, and what a ban needs later);
- what reaches shared state (a `banned` flag) is a *period* hash `HMAC(K_p, root hash)`,
  `K_p = HMAC(secret, "address period p")`, `p = floor(wall clock / rotation)`: the
  hashes in Redis change every period. A connection is checked under this period's and
  the previous period's hash (the overlap: nodes whose clocks differ a little near a
  change, and bans made just before it), and a ban is written under every period it
  spans, each entry expiring when its period stops being checked, or with the ban.

With the memory broker (one process) and no secret given, a random one is made at start
and kept in memory only. With Redis it is required: a node cannot tell whether it is
alone, and two nodes with different keys would hash the same address differently, so a
ban made on one would not hold on the other.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config

MIN_SECRET = 32  # characters: `openssl rand -hex 32` gives 64
HASH_HEX = 32  # an address hash is cut to 128 bits (as hex)
MISSING = (
    "a Redis broker needs the address key every node shares: put a random secret in a file "
    "(openssl rand -hex 32 > address.key; chmod 600 address.key) and give it to every node "
    "with --address-key-file FILE, or set CHATSUPPORT_ADDRESS_KEY (docs/privacy.md)"
)


def derive(secret: bytes, label: str) -> bytes:
    """A 32-byte key for one purpose: every node with the same secret gets the same."""
    return hmac.new(secret, b"chatsupport " + label.encode(), hashlib.sha256).digest()


def keyed_hash(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:HASH_HEX]


def operator_secret(config: Config) -> bytes:
    """The secret the operator gave (the file first, then `address_key`, which is
    CHATSUPPORT_ADDRESS_KEY); a random one for a single process on the memory broker.
    Raises ValueError, saying what to do, when it is missing on Redis or too short."""
    if config.address_key_file:
        text = Path(config.address_key_file).read_text(encoding="utf-8")
        where = f"--address-key-file {config.address_key_file}"
    else:
        text, where = config.address_key or "", "CHATSUPPORT_ADDRESS_KEY"
    text = text.strip()
    if not text:
        if config.broker.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(MISSING)
        return secrets.token_bytes(32)  # one process: nobody else needs to agree with it
    if len(text) < MIN_SECRET:
        raise ValueError(f"{where} is too short: at least {MIN_SECRET} random characters")
    return text.encode()


@dataclass(slots=True)
class AddressSchedule:
    """Turns a root address hash into the period hashes shared state may hold (the core's
    `AddressPeriods` port); `root_key` is what the transport hashes addresses with."""

    secret: bytes = field(repr=False)
    rotation: float = 86400.0  # seconds between changes of the period key
    wallclock: Callable[[], float] = time.time
    _keys: dict[int, bytes] = field(default_factory=dict, repr=False)

    @property
    def root_key(self) -> bytes:
        return derive(self.secret, "address root")

    def period(self, when: float | None = None) -> int:
        return math.floor((self.wallclock() if when is None else when) / self.rotation)

    def _key(self, period: int) -> bytes:
        key = self._keys.get(period)
        if key is None:
            if len(self._keys) > 64:  # only a few periods are ever in use at once
                self._keys.clear()
            key = self._keys[period] = derive(self.secret, f"address period {period}")
        return key

    def hash_in(self, period: int, root: str) -> str:
        return keyed_hash(self._key(period), root)

    def current(self, root: str) -> tuple[str, ...]:
        """The hashes a connection is checked under now: this period's and the last one's."""
        now = self.period()
        return (self.hash_in(now, root), self.hash_in(now - 1, root))

    def spanning(self, root: str, seconds: float) -> list[tuple[str, float]]:
        """What a ban of `seconds` from now is written under: (hash, seconds to keep it)
        for every period a check may look at while it lasts, from the previous one on."""
        now = self.wallclock()
        first, last = self.period(now) - 1, self.period(now + seconds)
        written = []
        for period in range(first, last + 1):
            checked_until = (period + 2) * self.rotation  # the end of the period after it
            written.append((self.hash_in(period, root), min(seconds, checked_until - now)))
        return written
