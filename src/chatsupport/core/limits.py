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

    def _refill(self, now: float) -> None:
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
            return
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, now: float, cost: float = 1.0) -> float:
        self._refill(now)
        missing = min(cost, self.burst) - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self.wait(now, cost) > 0:
            return False
        self.tokens -= min(cost, self.burst)
        return True


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

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may have one more event (0 if it may now)."""
        events = self._events.get(key)
        if not events or len(events) < self.limit:
            return 0.0
        return max(0.0, events[0] + self.window - now)

    def clear(self, key: str) -> None:
        self._events.pop(key, None)

    def prune(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]


def message_cost(text: str) -> float:
    """Long messages cost more: one token, plus one per started 500 characters beyond the first."""
    return 1.0 + max(0, len(text) - 1) // 500
