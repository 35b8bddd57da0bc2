"""The memory broker's compact name-claim table against a plain dict (the old store)."""

from __future__ import annotations

import random

from chatsupport.broker.memory import _Claims


def test_claims_behave_as_a_dict_through_growth_and_shrinking() -> None:
    rng = random.Random(16)
    claims, plain = _Claims(), dict[str, str]()
    keys = [f"key{n}" for n in range(2000)]
    for step in range(30_000):
        key, uid = rng.choice(keys), rng.choice(("u1", "u2", "u3"))
        if step < 12_000 or rng.random() < 0.3:  # fill up, then mostly let go
            assert claims.claim(key, uid) is (plain.setdefault(key, uid) == uid)
        else:
            claims.release(key, uid)
            if plain.get(key) == uid:
                del plain[key]
        if step % 1000 == 0:
            assert len(claims) == len(plain)
            assert all(claims.holder(k) == plain.get(k) for k in keys)
    assert len(claims) == len(plain)
    assert all(claims.holder(k) == plain.get(k) for k in keys)


def test_a_claim_is_its_holders_until_released() -> None:
    claims = _Claims()
    assert claims.claim("quietotter", "u1")
    assert claims.claim("quietotter", "u1")  # one's own again
    assert not claims.claim("quietotter", "u2")
    claims.release("quietotter", "u2")  # not theirs: nothing happens
    assert claims.holder("quietotter") == "u1"
    claims.release("quietotter", "u1")
    assert claims.holder("quietotter") is None
    assert claims.claim("quietotter", "u2")
