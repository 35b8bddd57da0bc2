"""Flood control: token buckets on a clock passed in, so they are tested without sleeping."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second refill a bucket of `burst`; an action costs tokens.

    `wait(now, cost)` says how long until `cost` tokens are there, without taking them, so
    a transport can choose to read later (TCP) or refuse (WebSocket).
    """

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = 0.0
    # Tokens forgiven for a stall of this node (`forgive`), spent before the others, and
    # only until `spare_until`: what arrived during the stall is not charged as a flood.
    spare: float = 0.0
    spare_until: float = 0.0
    debt: float = 0.0  # charged after an answer (`charge`), owed before anything else

    def _refill(self, now: float) -> None:
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
            return
        tokens = self.tokens + max(0.0, now - self.stamp) * self.rate
        if self.debt:  # paid from the refill first
            paid = min(self.debt, tokens)
            tokens, self.debt = tokens - paid, self.debt - paid
        self.tokens, self.stamp = min(self.burst, tokens), max(self.stamp, now)

    def _spare(self, now: float) -> float:
        if self.spare and now >= self.spare_until:
            self.spare = 0.0
        return self.spare

    def wait(self, now: float, cost: float = 1.0) -> float:
        self._refill(now)
        missing = min(cost, self.burst) - self.tokens - self._spare(now)
        return 0.0 if missing <= 0 else (missing + self.debt) / self.rate

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.wait(now, cost) > 0:
            return False
        cost = min(cost, self.burst)
        from_spare = min(self.spare, cost)
        self.spare -= from_spare
        self.tokens -= cost - from_spare
        return True

    def forgive(self, seconds: float, until: float) -> None:
        """The node could not read for `seconds` (a stall): what the sender may have sent
        meanwhile, at `rate`, is not charged if it is handled before `until`."""
        self.spare = max(self.spare, seconds * self.rate)
        self.spare_until = until

    def charge(self, now: float, cost: float) -> None:
        """A cost known only after answering (the answer's size): taken from the tokens,
        the rest owed (at most one burst), so that the next request waits for it."""
        self._refill(now)
        taken = min(cost, self.tokens)
        self.tokens -= taken
        self.debt = min(self.burst, self.debt + cost - taken)

    def refund(self, cost: float) -> None:
        """Give back what `take(cost)` took (the request it paid for was refused)."""
        self.tokens = min(self.burst, self.tokens + min(cost, self.burst))


@dataclass(slots=True)
class WindowCounter:
    """At most `limit` events per `window` seconds per key (e.g. new connections per address)."""

    limit: int
    window: float
    _events: dict[str, deque[float]] = field(default_factory=dict)

    def full(self, key: str, now: float) -> bool:
        """Whether `key` has used up its events in the current window."""
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        return len(events) >= self.limit

    def hit(self, key: str, now: float) -> bool:
        """Record an event for `key`; False (and nothing recorded) when over the limit."""
        if self.full(key, now):
            return False
        self._events[key].append(now)
        return True

    def retry_in(self, key: str, now: float) -> float:
        """Seconds until `key` may have an event again (0 when it may now)."""
        if not self.full(key, now):
            return 0.0
        events = self._events[key]
        return events[len(events) - self.limit] + self.window - now

    def clear(self, key: str) -> None:
        self._events.pop(key, None)

    def prune(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]


def message_cost(text: str) -> float:
    """Long messages cost more: one token, plus one per started 500 characters beyond the first."""
    return 1.0 + max(0, len(text) - 1) // 500


@dataclass(slots=True)
class Stalls:
    """When this node's event loop was held up (its host stopped it, a long GC pause, a
    blocked loop): a heartbeat (`beat`, every `interval` seconds) that comes late by more
    than `threshold` records the time it could not run. What a person sent meanwhile was
    queued by the kernel and is read all at once afterwards; `overlap` says how much of a
    bucket's quiet time was such a stall, so the Chat forgives it (`TokenBucket.forgive`)
    instead of charging a backlog that arrived at an honest pace as a flood.
    """

    interval: float = 0.25
    threshold: float = 0.25
    grace: float = 5.0  # how long after a stall its backlog is still being read
    last: float | None = None
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=8))

    def beat(self, now: float) -> float:
        """The heartbeat ran at `now`; the stall it found (seconds), or 0."""
        last, self.last = self.last, now
        if last is None:
            return 0.0
        late = now - last - self.interval
        if late <= self.threshold:
            return 0.0
        self.recent.append((last + self.interval, now))
        return late

    def overlap(self, since: float, now: float) -> tuple[float, float]:
        """(seconds stalled between `since` and `now`, when the backlog stops being
        forgiven); (0, 0) when no stall ended recently."""
        stalled, until = 0.0, 0.0
        for start, end in self.recent:
            if end > since and now < end + self.grace:
                stalled += end - max(start, since)
                until = max(until, end + self.grace)
        return stalled, until
