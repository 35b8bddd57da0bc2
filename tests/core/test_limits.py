"""Token buckets after a stall of the node, and costs charged after answering."""

from __future__ import annotations

from chatsupport.core.limits import Stalls, TokenBucket


def test_a_late_heartbeat_records_the_stall() -> None:
    stalls = Stalls(interval=0.25, threshold=0.25, grace=5.0)
    assert stalls.beat(100.0) == 0.0
    assert stalls.beat(100.3) == 0.0  # a little late is no stall
    assert stalls.beat(110.55) == 10.0  # stopped for ten seconds
    assert stalls.overlap(since=99.0, now=110.6) == (10.0, 115.55)
    assert stalls.overlap(since=110.55, now=110.6) == (0.0, 0.0)  # charged after it: nothing
    assert stalls.overlap(since=99.0, now=116.0) == (0.0, 0.0)  # too long after: over


def test_a_forgiven_stall_takes_the_backlog_once_and_then_expires() -> None:
    bucket = TokenBucket(rate=5.0, burst=5.0)
    assert bucket.take(0.0)
    bucket.forgive(10.0, until=15.0)  # 50 tokens' worth arrived while stalled
    assert all(bucket.take(10.0) for _ in range(55))  # the burst, and 50 forgiven
    assert not bucket.take(10.0)
    bucket.forgive(10.0, until=15.0)
    assert all(bucket.take(16.0) for _ in range(5))  # expired: only the burst again
    assert not bucket.take(16.0) and bucket.spare == 0.0


def test_a_cost_charged_after_is_owed_then_waited_for() -> None:
    bucket = TokenBucket(rate=1.0, burst=8.0)
    assert bucket.take(0.0, 1.0)
    bucket.charge(0.0, 20.0)  # a big answer: 7 paid, 8 owed at most
    assert bucket.tokens == 0.0 and bucket.debt == 8.0
    assert bucket.wait(0.0, 1.0) == 9.0
    assert not bucket.take(8.5) and bucket.take(9.0)
