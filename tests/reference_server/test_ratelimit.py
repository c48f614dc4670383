"""The token bucket on a fake clock."""
from __future__ import annotations

import pytest

from reference_server.ratelimit import TokenBucket


def takes(bucket: TokenBucket, now: float, tries: int) -> int:
    return sum(bucket.take(now) for _ in range(tries))


def test_starts_full_and_then_refuses():
    bucket = TokenBucket(rate=10, burst=3)
    assert takes(bucket, 100.0, 5) == 3
    assert bucket.take(100.0) is False


def test_refills_at_the_rate_and_never_past_the_burst():
    bucket = TokenBucket(rate=10, burst=3)
    takes(bucket, 0.0, 3)
    assert takes(bucket, 0.1, 5) == 1  # 0.1 s at 10/s: one token
    assert takes(bucket, 0.15, 5) == 0  # half a token so far
    assert takes(bucket, 0.2, 5) == 1
    assert takes(bucket, 100.0, 10) == 3


def test_a_clock_going_back_refills_nothing():
    bucket = TokenBucket(rate=1, burst=2)
    takes(bucket, 5.0, 2)
    assert bucket.take(4.0) is False
    assert takes(bucket, 5.5, 5) == 0  # half a token since 5.0 (from 4.0 it would be one and a half)
    assert takes(bucket, 6.0, 5) == 1


def test_zero_rate_and_burst_refuse_everything():
    bucket = TokenBucket(rate=0, burst=0)
    assert takes(bucket, 0.0, 3) == 0 and takes(bucket, 1e6, 3) == 0


@pytest.mark.parametrize("rate, burst", [(-1, 1), (1, -1), (float("nan"), 1)])
def test_negative_or_nan_settings_are_refused(rate, burst):
    with pytest.raises(ValueError, match="must be numbers >= 0"):
        TokenBucket(rate=rate, burst=burst)
