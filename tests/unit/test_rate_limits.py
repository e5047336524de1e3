"""``exchange.limits`` in this process: the token bucket, the daily quota on the Vietnam day
(UTC+7) with an injected clock, and the choice of limiter from the environment."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dinhdanh.exchange import limits
from dinhdanh.exchange.limits import (
    MemoryLimiter,
    RedisLimiter,
    limiter_for,
    vietnam_day_end,
)


class Clock:
    def __init__(self, at: float):
        self.at = at

    def __call__(self) -> float:
        return self.at


def utc(*args) -> float:
    return dt.datetime(*args, tzinfo=dt.UTC).timestamp()


def test_vietnam_day_ends_at_17_utc():
    assert vietnam_day_end(utc(2026, 12, 4, 0, 0)) == utc(2026, 12, 4, 17, 0)
    assert vietnam_day_end(utc(2026, 12, 4, 16, 59, 59)) == utc(2026, 12, 4, 17, 0)
    assert vietnam_day_end(utc(2026, 12, 4, 17, 0)) == utc(2026, 12, 5, 17, 0)
    assert vietnam_day_end(utc(2026, 12, 31, 18, 0)) == utc(2027, 1, 1, 17, 0)  # 1 January in Hanoi already
    assert vietnam_day_end(utc(2028, 2, 28, 17, 30)) == utc(2028, 2, 29, 17, 0)  # leap day


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_vietnam_day_end_is_the_next_local_midnight(now):
    end = vietnam_day_end(now)
    assert 0 < end - now <= 86_400
    local = dt.datetime.fromtimestamp(end, limits.VIETNAM)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)


def test_bucket_bursts_then_refills():
    clock = Clock(1000.0)
    limiter = MemoryLimiter(clock=clock)
    assert [limiter.take("p", 60) for _ in range(60)] == [0.0] * 60
    wait = limiter.take("p", 60)
    assert 0.99 <= wait <= 1.0
    clock.at += 1.0
    assert limiter.take("p", 60) == 0.0
    assert limiter.take("p", 60) > 0
    assert limiter.take("other", 60) == 0.0  # its own bucket


def test_quota_counts_to_the_limit_and_says_how_long_to_midnight():
    wall = Clock(utc(2026, 12, 4, 16, 0))  # 23:00 in Hanoi
    limiter = MemoryLimiter(wall=wall)
    end = vietnam_day_end(limiter.now())
    assert [limiter.count("p", 3, end) for _ in range(3)] == [0.0] * 3
    assert limiter.count("p", 3, end) == pytest.approx(3600.0)
    assert limiter.count("q", 3, end) == 0.0  # another partner
    wall.at = utc(2026, 12, 4, 16, 59, 59)
    assert limiter.count("p", 3, vietnam_day_end(limiter.now())) == pytest.approx(1.0)
    # midnight in Hanoi: a new day, a new count
    wall.at = utc(2026, 12, 4, 17, 0, 1)
    end = vietnam_day_end(limiter.now())
    assert [limiter.count("p", 3, end) for _ in range(3)] == [0.0] * 3
    assert limiter.count("p", 3, end) > 86_000


def test_quota_window_from_an_earlier_day_does_not_carry_over():
    wall = Clock(utc(2026, 12, 4, 10, 0))
    limiter = MemoryLimiter(wall=wall)
    first = vietnam_day_end(limiter.now())
    assert limiter.count("p", 1, first) == 0.0
    assert limiter.count("p", 1, first) > 0
    wall.at = first + 5  # the worker asks with the new day's end
    assert limiter.count("p", 1, vietnam_day_end(limiter.now())) == 0.0


def test_retry_after_is_whole_seconds_at_least_one():
    assert limits.retry_after(0.01) == "1"
    assert limits.retry_after(2.2) == "3"
    assert limits.retry_after(3600) == "3600"


def test_limiter_for_without_an_engine():
    assert isinstance(limiter_for(None, {}), MemoryLimiter)
    assert isinstance(limiter_for(None, {"DINHDANH_REDIS_URL": "  "}), MemoryLimiter)
    chosen = limiter_for(None, {"DINHDANH_REDIS_URL": "redis://127.0.0.1:1/0"})  # no connection until used
    assert isinstance(chosen, RedisLimiter)
    chosen.close()


def test_redis_down_is_an_unavailable_limiter_not_a_crash():
    limiter = RedisLimiter("redis://127.0.0.1:1/0", timeout=0.2)  # nothing listens on port 1
    with pytest.raises(limits.LimiterUnavailable):
        limiter.take("p", 60)
    with pytest.raises(limits.LimiterUnavailable):
        limiter.count("p", 10, vietnam_day_end(limiter.now()))
    limiter.close()
