"""Address keys from the operator's secret, rotating with an overlap; bans carried across
rotations without anyone keeping an address (keys.py, docs/privacy.md). A real Chat and
memory broker on a clock moved by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatsupport.broker.memory import MemoryBroker
from chatsupport.config import Config
from chatsupport.core import requests as rq
from chatsupport.core.chat import Chat
from chatsupport.core.moderation import Moderation
from chatsupport.core.roles import Roles, hash_line, parse_tokens
from chatsupport.keys import MISSING, AddressSchedule, keyed_hash, operator_secret
from chatsupport.server import features

from .harness import MOD, Clock, person

SECRET = b"an operator secret of at least 32 characters"
ROTATION = 600.0


async def make_chat(clock: Clock) -> tuple[Chat, AddressSchedule]:
    config = Config(probation_seconds=0)
    schedule = AddressSchedule(SECRET, ROTATION, clock)
    broker = MemoryBroker(config.retention_seconds, config.retention_messages, clock, SECRET)
    chat = Chat(config, broker, features(config, schedule), clock=clock, wallclock=clock)
    chat.feature(Roles).entries = parse_tokens(hash_line("mod", MOD))
    await chat.start()
    return chat, schedule


async def test_a_ban_holds_across_rotations_and_ends_with_itself() -> None:
    clock = Clock()
    clock.now = 100 * ROTATION + ROTATION - 5  # five seconds before the key changes
    chat, schedule = await make_chat(clock)
    root = "root-of-address-t"  # what the transport's AddressKeys gives (memory only)
    mod, _ = await person(chat, "root-of-the-mod")
    await chat.handle(mod, rq.Auth(token=MOD))
    target, _ = await person(chat, root)
    await chat.handle(mod, rq.Ban(uid=target.session.uid, minutes=60))

    shared = await chat.broker.flags("banned")
    assert root not in shared  # the memory key is never what is shared
    periods = range(schedule.period() - 1, schedule.period(clock.now + 3600) + 1)
    assert set(shared) == {schedule.hash_in(p, root) for p in periods}
    for value in shared.values():  # none outlives the ban
        assert json.loads(value)["until"] <= clock.now + 3600
    ban = json.loads((await chat.broker.flags("ban"))[target.session.uid])
    assert sorted(ban["data"]["keys"]) == sorted(shared)

    start = clock.now
    for step in range(1, 8):  # across six changes of the key, to its last second
        refusal = chat.admit(root)
        assert refusal is not None and refusal.code == "banned"
        assert chat.admit("root-of-someone-else") is None
        chat.release("root-of-someone-else")
        clock.now = min(start + step * ROTATION, start + 3599)
        await chat.tick()
    clock.now = start + 3601
    await chat.tick()
    assert chat.admit(root) is None
    assert await chat.broker.flags("banned") == {}
    assert chat.feature(Moderation).state.banned == {}


def test_period_keys_are_derived_alike_and_change_every_period() -> None:
    clock = Clock()
    one, two = AddressSchedule(SECRET, 60.0, clock), AddressSchedule(SECRET, 60.0, clock)
    other = AddressSchedule(b"another operator's secret, 32 chars+", 60.0, clock)
    assert one.current("r") == two.current("r") != other.current("r")
    now, before = one.current("r")
    clock.now += 60
    assert one.current("r") == (one.hash_in(one.period(), "r"), now)  # the overlap
    assert before not in one.current("r")
    assert one.root_key == two.root_key != other.root_key
    assert keyed_hash(one.root_key, "127.0.0.1") != keyed_hash(other.root_key, "127.0.0.1")


def test_the_operator_secret_comes_from_a_file_or_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "address.key"
    path.write_text("k" * 40 + "\n")
    assert operator_secret(Config(address_key_file=str(path))) == b"k" * 40
    assert operator_secret(Config(address_key="s" * 32)) == b"s" * 32
    one, two = operator_secret(Config()), operator_secret(Config())
    assert len(one) == 32 and one != two  # one process: random, in memory only
    with pytest.raises(ValueError, match="at least 32"):
        operator_secret(Config(address_key="short"))
    with pytest.raises(ValueError) as refused:
        operator_secret(Config(broker="redis://127.0.0.1:1/0"))
    assert str(refused.value) == MISSING


async def test_a_person_ban_shares_only_period_keys_of_the_client_and_spares_the_network() -> None:
    clock = Clock()
    clock.now = 100 * ROTATION + ROTATION - 5
    chat, schedule = await make_chat(clock)
    mod, _ = await person(chat, "root-of-the-mod")
    await chat.handle(mod, rq.Auth(token=MOD))
    target, _ = await person(chat, "root-of-address-t", "root-of-client-t")
    await chat.handle(mod, rq.Ban(uid=target.session.uid, minutes=60, scope="person"))

    assert await chat.broker.flags("banned") == {}  # the network is not banned
    blocked = await chat.broker.flags("blocked")
    assert "root-of-client-t" not in blocked  # the memory key is never what is shared
    periods = range(schedule.period() - 1, schedule.period(clock.now + 3600) + 1)
    assert set(blocked) == {schedule.hash_in(p, "root-of-client-t") for p in periods}
    clock.now += 2 * ROTATION  # after two changes of the key
    await chat.tick()
    assert chat.admit("root-of-address-t", "root-of-client-t") is not None
    assert chat.admit("root-of-address-t", "root-of-client-other") is None
