"""One person's message storm gets a handful of answers, not one per message (issue 12.1)."""

from __future__ import annotations

from bot.services.throttle import PersonThrottle, TokenBucket, Verdict


def test_a_storm_of_200_messages_gets_one_warning_and_no_other_answers() -> None:
    throttle = PersonThrottle(burst=10, per_minute=30)
    verdicts = [throttle.verdict(7001, now=100.0 + i * 0.05) for i in range(200)]
    assert verdicts.count(Verdict.HANDLE) <= 15
    assert verdicts.count(Verdict.WARN) == 1
    # Someone else is not held back by the storm.
    assert throttle.verdict(7002, now=110.0) is Verdict.HANDLE


def test_honest_pace_is_never_throttled_and_tokens_come_back() -> None:
    throttle = PersonThrottle(burst=10, per_minute=30)
    assert all(throttle.verdict(1, now=i * 3.0) is Verdict.HANDLE for i in range(500))
    for _ in range(12):
        throttle.verdict(2, now=1000.0)
    assert throttle.verdict(2, now=1000.0) is Verdict.DROP
    assert throttle.verdict(2, now=1005.0) is Verdict.DROP  # told to wait: still quiet
    assert throttle.verdict(2, now=1030.0) is Verdict.HANDLE  # half a minute later


def test_memory_is_bounded() -> None:
    throttle = PersonThrottle(max_people=100)
    for person in range(1000):
        throttle.verdict(person, now=0.0)
    assert len(throttle._buckets) == 100


def test_bucket_refills_up_to_capacity() -> None:
    bucket = TokenBucket(capacity=2, rate=1, tokens=0, updated=0)
    assert bucket.take(now=1.0) and not bucket.take(now=1.0)
    assert bucket.take(now=100.0) and bucket.take(now=100.0) and not bucket.take(now=100.0)
