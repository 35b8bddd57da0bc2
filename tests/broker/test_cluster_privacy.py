"""What someone holding a copy of Redis learns (docs/privacy.md, "What a copy of Redis
holds"): two nodes on a private redis-server, people from chosen loopback addresses, bans
on the same node and across nodes, then every key of that server read back (SCAN, DUMP
and each value) and searched for anything that gives an address back."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from chatsupport import Config
from chatsupport.keys import MISSING, AddressSchedule, derive, keyed_hash, operator_secret

from ..helpers import TEST_ADDRESS_KEY, ServerProcess, TextClient, WsClient, start_server
from ..mod_helpers import staff_ws, write_tokens, ws_from
from ..redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis

BANNED_ACROSS = "127.0.0.51"  # on node a, banned by a moderator on node b
BANNED_HERE = "127.0.0.52"  # on node b, banned there
TALKER = "127.0.0.53"  # chats, disconnects, stays resumable
MODERATOR = "127.0.0.54"
ADDRESSES = (BANNED_ACROSS, BANNED_HERE, TALKER, MODERATOR)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone: everything in it is ours to read."""
    server = RedisServer().start()
    yield server
    server.stop()


def read_everything(port: int) -> tuple[list[bytes], dict[bytes, int]]:
    """Every key name, field, member and value (and each key's DUMP), and each key's PTTL."""
    blobs: list[bytes] = []
    ttls: dict[bytes, int] = {}
    found: list[Any] = []
    client: Any  # redis-py types every answer as bytes | str; it answers bytes here
    with closing(redis.Redis(port=port)) as client:
        for key in client.scan_iter(count=1000):
            ttls[key] = int(client.pttl(key))
            found += [key, client.dump(key) or b""]
            kind = client.type(key)
            if kind == b"string":
                found.append(client.get(key) or b"")
            elif kind == b"hash":
                found += [part for pair in client.hgetall(key).items() for part in pair]
            elif kind == b"set":
                found += list(client.smembers(key))
            elif kind == b"zset":
                found += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == b"list":
                found += list(client.lrange(key, 0, -1))
            elif kind == b"stream":
                for _, fields in client.xrange(key):
                    found += [part for pair in fields.items() for part in pair]
    blobs = [bytes(blob) for blob in found]  # the client answers bytes (no decoding asked)
    return blobs, ttls


def candidate_keys(blobs: list[bytes]) -> set[bytes]:
    """Whatever in the copy could serve as a key: every blob, every piece of one split at
    punctuation, and every hex run decoded."""
    found: set[bytes] = set()
    for blob in blobs:
        found.add(blob)
        found.update(part for part in re.split(rb"[|:,\"\[\]{} ]", blob) if part)
        for run in re.findall(rb"[0-9a-f]{16,}", blob):
            found.add(run)
            if len(run) % 2 == 0:
                found.add(bytes.fromhex(run.decode()))
    return found


def hex_windows(text: str, width: int = 32) -> set[str]:
    """Every run of `width` hex digits in `text`, wherever it starts."""
    runs = re.findall(rf"[0-9a-f]{{{width},}}", text)
    return {run[i : i + width] for run in runs for i in range(len(run) - width + 1)}


async def ban(mod: WsClient, name: str) -> None:
    reply = await mod.request({"type": "ban", "name": name, "minutes": 30}, "notice")
    assert reply["text"] == f"{name} is banned for 30 minutes, their network for 30 minutes"


async def refused_everywhere(ports: list[int], address: str) -> None:
    """Both nodes refuse `address` (the node holding a person bans their address on its
    next housekeeping tick: tried again for a bounded while)."""
    for port in ports:
        for _ in range(100):
            client = await ws_from(port, address, welcome=False)
            first = await client.recv()
            await client.close()
            if first.get("code") == "banned":
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"{address} was never refused on port {port}")


async def test_a_redis_copy_holds_no_key_and_nothing_that_gives_an_address_back(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    url = private_redis.url("copy:")
    tokens = write_tokens(tmp_path)
    a = await start_server(broker=url, tokens_file=tokens)
    b = await start_server(broker=url, tokens_file=tokens)
    try:
        mod = await staff_ws(b.http_port, address=MODERATOR)
        across = await ws_from(a.http_port, BANNED_ACROSS)
        here = await TextClient.open(b.tcp_port, local_addr=BANNED_HERE)
        talker = await ws_from(b.http_port, TALKER)
        said = await across.request({"type": "say", "room": "lobby", "text": "go away"}, "message")
        await talker.expect("message", id=said["id"])
        report = {"type": "report", "id": said["id"], "room": "lobby", "reason": "rude"}
        assert (await talker.request(report, "notice"))["kind"] == "report"
        await ban(mod, across.name)
        await ban(mod, here.name)
        await talker.close()  # resumable: its record stays in Redis
        await refused_everywhere([a.http_port, b.http_port], BANNED_ACROSS)
        await refused_everywhere([a.http_port, b.http_port], BANNED_HERE)
        blobs, ttls = read_everything(private_redis.port)
    finally:
        await a.stop()
        await b.stop()
    haystack = b"\n".join(blobs)
    text = haystack.decode("utf-8", "replace")

    # No key material: not the operator's secret, nor anything derived from it.
    secret = operator_secret(Config(address_key=TEST_ADDRESS_KEY))
    schedule = AddressSchedule(secret)
    now = schedule.period()
    derived = [secret, schedule.root_key, derive(secret, "shared reporters")]
    derived += [derive(secret, f"address period {p}") for p in range(now - 2, now + 3)]
    for material in derived:
        assert material not in haystack and material.hex().encode() not in haystack
    assert not [key for key in ttls if b"secret" in key]

    # No address, in text or packed.
    for address in ADDRESSES:
        assert address.encode() not in haystack
        assert all(socket.inet_aton(address) not in blob for blob in blobs if blob not in ttls)

    # No hash of an address (or of a hash of one) under anything the copy holds.
    keys = candidate_keys(blobs)
    assert len(keys) > 50  # the search really looked at the copy
    firsts = {keyed_hash(key, address) for key in keys for address in ADDRESSES} | {
        hashlib.sha256(address.encode()).hexdigest()[:32] for address in ADDRESSES
    }
    held = hex_windows(text)
    assert not firsts & held
    assert not {keyed_hash(key, first) for key in keys for first in firsts} & held
    full = {hmac.new(k, a.encode(), hashlib.sha256).hexdigest() for k in keys for a in ADDRESSES}
    assert not {h[:32] for h in full} & held and not {h[32:] for h in full} & held

    # What is there: the bans' period hashes, under keys that are not in the copy, each
    # expiring no later than its ban.
    with closing(redis.Redis(port=private_redis.port, decode_responses=True)) as reader:
        banned = cast(dict[str, str], reader.hgetall("copy:flags:banned"))
    for address in (BANNED_ACROSS, BANNED_HERE):
        root = keyed_hash(schedule.root_key, address)
        assert schedule.current(root)[0] in banned
    limit_ms = ttls[b"copy:flags:banned"]
    assert 0 < limit_ms <= 30 * 60 * 1000
    for value in banned.values():
        assert json.loads(value.split("|", 1)[1])["until"] > 0
    assert all(ttl > 0 for key, ttl in ttls.items() if b"flags:" in key)
    assert re.fullmatch(rb"[0-9a-f]{8}", blobs[blobs.index(b"copy:keycheck") + 2])


def test_a_node_on_redis_without_an_address_key_refuses_to_start() -> None:
    env = {k: v for k, v in ServerProcess().env.items() if k != "CHATSUPPORT_ADDRESS_KEY"}
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    done = subprocess.run(
        [sys.executable, "-m", "chatsupport", "serve", "--broker", nowhere, *("--http-port", "0")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"chatsupport: bad configuration: {MISSING}"


async def test_a_node_with_another_key_is_refused(private_redis: RedisServer) -> None:
    url = private_redis.url("keys:")
    first = await start_server(broker=url)
    try:
        with pytest.raises(ValueError, match="differs from the one the nodes already running"):
            await start_server(broker=url, address_key="a different key of 32 characters+")
        again = await start_server(broker=url)  # the same key is welcome
        await again.stop()
    finally:
        await first.stop()
