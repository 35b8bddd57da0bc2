"""Shared state that is not delivery: names, resume records, the key check, and the
flags and queues features keep. What this node put in Redis is also held here, so that it
can be written back after an outage (even to a Redis that restarted empty)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from redis.asyncio.client import Pipeline

from ...core.ports import SessionRecord
from ...keys import derive
from . import wire
from .connection import Link, degrades, raises_unavailable

log = logging.getLogger("chatsupport.broker.redis")

CHECK_TTL = 2 * 24 * 3600.0  # renewed while any node runs; gone 2 days after the last
LEGACY = (("secret", "address"), ("secret", "reporters"))  # keys older nodes kept in Redis
TOMBSTONE = 60.0  # an ended session cannot be saved again for this long (late saves)


def loop_time() -> float:
    return asyncio.get_running_loop().time()


class Names:
    def __init__(self, link: Link, retention_seconds: float) -> None:
        self.link = link
        self.retention_seconds = retention_seconds
        self.held: dict[str, str] = {}  # name key -> uid, claimed by this node
        self._releases: dict[str, str] = {}  # names given up while Redis was away

    async def claim_name(self, key: str, uid: str) -> bool:
        holder = self.held.get(key)
        if holder is not None and holder != uid:
            return False
        claimed = await self._claim(key, uid)
        if claimed:
            self.held[key] = uid
            self._releases.pop(key, None)
        return claimed

    def _claimed_here(self, key: str, uid: str) -> bool:
        return True  # only this node can be checked now; confirmed on resync

    @degrades(_claimed_here)
    async def _claim(self, key: str, uid: str) -> bool:
        ttl = wire.ms(self.retention_seconds)
        return bool(await self.link.run("CLAIM_NAME", [self.link.key("name", key)], [uid, ttl]))

    async def release_name(self, key: str, uid: str) -> None:
        if self.held.get(key) == uid:
            del self.held[key]
        await self._release(key, uid)

    def _release_later(self, key: str, uid: str) -> None:
        self._releases[key] = uid

    @degrades(_release_later)
    async def _release(self, key: str, uid: str) -> None:
        await self.link.run("RELEASE_NAME", [self.link.key("name", key)], [uid])

    def forget_holder(self, uid: str) -> None:
        for key in [k for k, holder in self.held.items() if holder == uid]:
            del self.held[key]

    def renew(self, pipe: Pipeline) -> None:
        for key in self.held:
            pipe.pexpire(self.link.key("name", key), wire.ms(self.retention_seconds))

    async def reclaim(self) -> None:
        ttl = wire.ms(self.retention_seconds)
        for key, uid in list(self._releases.items()):
            await self.link.run("RELEASE_NAME", [self.link.key("name", key)], [uid])
            self._releases.pop(key, None)
        for key, uid in list(self.held.items()):
            if not await self.link.run("CLAIM_NAME", [self.link.key("name", key)], [uid, ttl]):
                # Taken elsewhere while we could not check: two people share a name until
                # one of them changes it. Rare (only while this node alone was cut off).
                log.warning("a name claimed during the outage is also held on another node")


class Sessions:
    def __init__(
        self, link: Link, retention_seconds: float, release: Callable[[str], Awaitable[None]]
    ) -> None:
        self.link = link
        self.retention_seconds = retention_seconds
        self.release = release  # uid: another node holds them now, let go here
        self._held: dict[str, SessionRecord] = {}  # token hash -> record, held here
        self._owners: dict[str, str] = {}  # uid -> token hash
        self._drops: set[str] = set()  # records to delete once Redis is back
        self._dropped: dict[str, float] = {}  # token hash -> until when it stays ended

    async def save_session(self, record: SessionRecord) -> None:
        if self._held.get(record.token_hash) == record:
            return  # unchanged: nothing to write (Chat saves on every tick)
        if self._dropped.get(record.token_hash, 0.0) > loop_time():
            return  # ended a moment ago: a late save must not revive it
        self._held[record.token_hash] = record
        self._owners[record.uid] = record.token_hash
        self._drops.discard(record.token_hash)
        outcome = await self._save(record)
        if outcome is not None:
            await self._saved(record, outcome)

    def _save_later(self, record: SessionRecord) -> int | None:
        return None  # written on resync

    @degrades(_save_later)
    async def _save(self, record: SessionRecord) -> int | None:
        return await self._write(record)

    async def _write(self, record: SessionRecord) -> int:
        """SAVE_SESSION: 1 saved, 0 another node holds the person now, 2 the session ended."""
        link = self.link
        saved = await link.run(
            "SAVE_SESSION",
            [link.key("sess", record.token_hash)],
            [
                link.node,
                record.uid,
                " ".join(record.rooms),
                wire.encode(record),
                wire.ms(self.retention_seconds),
            ],
        )
        return int(saved)

    async def _saved(self, record: SessionRecord, outcome: int) -> None:
        if outcome == 0:
            await self.release(record.uid)
        elif outcome == 2:
            self._forget(record.token_hash)

    def _forget(self, token_hash: str) -> None:
        record = self._held.pop(token_hash, None)
        if record is not None and self._owners.get(record.uid) == token_hash:
            del self._owners[record.uid]

    def forget_owner(self, uid: str) -> None:
        """Another node holds `uid` now: their record is no longer ours to keep."""
        token_hash = self._owners.pop(uid, None)
        if token_hash is not None:
            self._held.pop(token_hash, None)

    @raises_unavailable
    async def take_session(self, token_hash: str) -> tuple[SessionRecord, list[str]] | None:
        link = self.link
        found = await link.run(
            "TAKE_SESSION", [link.key("sess", token_hash)], [link.prefix, link.node, link.channel]
        )
        if not found:
            return None
        record = wire.record(found[0])
        self._held[token_hash] = record
        self._owners[record.uid] = token_hash
        return record, [wire.text(room) for room in found[1:]]

    async def drop_session(self, token_hash: str) -> None:
        self._forget(token_hash)
        now = loop_time()
        for ended in [h for h, until in self._dropped.items() if until <= now]:
            del self._dropped[ended]
        self._dropped[token_hash] = now + TOMBSTONE
        await self._drop(token_hash)

    def _drop_later(self, token_hash: str) -> None:
        self._drops.add(token_hash)

    @degrades(_drop_later)
    async def _drop(self, token_hash: str) -> None:
        await self.link.run(
            "DROP_SESSION",
            [self.link.key("sess", token_hash)],
            [self.link.node, wire.ms(TOMBSTONE)],
        )

    def renew(self, pipe: Pipeline) -> None:
        for token_hash in self._held:
            pipe.pexpire(self.link.key("sess", token_hash), wire.ms(self.retention_seconds))

    async def rewrite(self) -> None:
        link = self.link
        for token_hash in list(self._drops):
            await link.run(
                "DROP_SESSION", [link.key("sess", token_hash)], [link.node, wire.ms(TOMBSTONE)]
            )
            self._drops.discard(token_hash)
        for record in list(self._held.values()):
            await self._saved(record, await self._write(record))


class SharedState:
    """Shared secrets (derived from the operator's, never in Redis), flags and queues; the
    flags and queues are refused while Redis is away."""

    def __init__(self, link: Link, secret: bytes) -> None:
        self.link = link
        self._secret = secret
        # 32 bits of a keyed hash of a constant: enough to notice a node given another key,
        # too few to test guesses of the key against (docs/privacy.md).
        self._check = derive(secret, "key check").hex()[:8].encode()
        self.mismatch = False  # another node's key differs from ours (bans would not hold)

    async def shared_secret(self, name: str) -> bytes:
        return derive(self._secret, f"shared {name}")

    def renew(self, pipe: Pipeline) -> None:
        pipe.pexpire(self.link.key("keycheck"), wire.ms(CHECK_TTL))

    async def restore(self) -> None:
        """Set the key check (if no node has) and compare; forget what older versions kept."""
        key = self.link.key("keycheck")
        kept = await self.link.run("KEYCHECK", [key], [self._check, wire.ms(CHECK_TTL)])
        self.mismatch = bytes(kept) != self._check
        if self.mismatch:
            log.error(
                "this node's address key differs from the other nodes': bans by address made "
                "on one do not hold on the other; give every node the same key"
            )
        await self.link.redis.delete(*(self.link.key(*parts) for parts in LEGACY))

    # ---- flags -----------------------------------------------------------------------------
    def _flags_key(self, kind: str) -> str:
        return self.link.key("flags", kind)

    @raises_unavailable
    async def set_flag(self, kind: str, key: str, ttl: float, value: str = "1") -> None:
        await self.link.run("SET_FLAG", [self._flags_key(kind)], [key, wire.ms(ttl), value])

    @raises_unavailable
    async def get_flag(self, kind: str, key: str) -> str | None:
        value = await self.link.run("GET_FLAG", [self._flags_key(kind)], [key])
        return wire.text(value) if value else None

    @raises_unavailable
    async def clear_flag(self, kind: str, key: str) -> bool:
        found = await self.link.run("GET_FLAG", [self._flags_key(kind)], [key])
        await self.link.redis.hdel(self._flags_key(kind), key)
        return bool(found)

    @raises_unavailable
    async def flags(self, kind: str) -> dict[str, str]:
        flat = await self.link.run("FLAGS", [self._flags_key(kind)])
        return {key: wire.text(value) for key, value in wire.pairs(flat)}

    # ---- queues ----------------------------------------------------------------------------
    def _queue_keys(self, queue: str) -> list[str]:
        return [self.link.key("queue", queue), self.link.key("queue", queue, "n")]

    @raises_unavailable
    async def enqueue(self, queue: str, item: str, ttl: float, priority: int = 1) -> int:
        keys = self._queue_keys(queue)
        return int(await self.link.run("ENQUEUE", keys, [item, wire.ms(ttl), priority, 0]))

    @raises_unavailable
    async def reprioritise(self, queue: str, item: str, priority: int) -> bool:
        keys = self._queue_keys(queue)
        return bool(await self.link.run("ENQUEUE", keys, [item, 0, priority, 1]))

    @raises_unavailable
    async def dequeue(self, queue: str, item: str | None = None) -> str | None:
        taken = await self.link.run("DEQUEUE", [self.link.key("queue", queue)], [item or ""])
        return wire.text(taken) if taken else None

    @raises_unavailable
    async def queued(self, queue: str) -> list[str]:
        items = await self.link.redis.zrange(self.link.key("queue", queue), 0, -1)
        return [wire.text(item) for item in cast(list[bytes], items)]
