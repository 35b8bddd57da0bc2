"""Brokers: where shared state lives. `memory` (default, one process) or `redis://...`."""

from __future__ import annotations

from collections.abc import Callable

from ..core.ports import Broker
from .memory import MemoryBroker


def make_broker(
    url: str,
    *,
    retention_seconds: float,
    retention_messages: int,
    wallclock: Callable[[], float],
    secret: bytes,
) -> Broker:
    """`secret` is the operator's (keys.py): the broker derives its shared secrets from it."""
    if url in ("", "memory", "memory://"):
        return MemoryBroker(retention_seconds, retention_messages, wallclock, secret)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisBroker  # imported lazily: the default needs no Redis

        return RedisBroker(url, retention_seconds, retention_messages, wallclock, secret)
    raise ValueError(f"unknown broker {url!r}: use 'memory' or 'redis://host:port/db'")
