"""``RedisLimiter`` against a real Redis (``DINHDANH_TEST_REDIS_URL``): two limiters stand for two
API workers and share one bucket and one daily quota; the semantics are those of
``MemoryLimiter``. Every test uses keys of its own, so runs never collide."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from dinhdanh.exchange.limits import MemoryLimiter, RedisLimiter, vietnam_day_end

REDIS_URL = os.environ.get("DINHDANH_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="DINHDANH_TEST_REDIS_URL is not set: Redis tests skipped "
                                                      "(.ci/run sets it)")


class Clock:
    def __init__(self, at: float):
        self.at = at

    def __call__(self) -> float:
        return self.at


@pytest.fixture
def workers():
    """Two limiters on one Redis, one prefix of their own, sharing one injected clock."""
    import redis

    prefix = f"dinhdanh-test:{uuid.uuid4().hex}:"
    # 23:00 in Hanoi tonight: ahead of Redis's own clock, which expires the quota keys (EXPIREAT)
    clock = Clock(vietnam_day_end(time.time()) - 3600.0)
    a, b = RedisLimiter(REDIS_URL, prefix=prefix, wall=clock), RedisLimiter(REDIS_URL, prefix=prefix, wall=clock)
    yield a, b, clock, prefix
    a.close()
    b.close()
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(f"{prefix}*"))
    if keys:
        r.delete(*keys)
    r.close()


def test_two_workers_share_one_bucket(workers):
    a, b, clock, _ = workers
    taken = [(a if i % 2 else b).take("partner:x", 10) for i in range(10)]
    assert taken == [0.0] * 10
    wait_a, wait_b = a.take("partner:x", 10), b.take("partner:x", 10)
    assert 5.9 <= wait_a <= 6.0 and 5.9 <= wait_b <= 6.0  # 10 a minute: one token every 6 s
    clock.at += 6.0
    assert b.take("partner:x", 10) == 0.0
    assert a.take("partner:x", 10) > 0
    assert a.take("partner:y", 10) == 0.0  # another partner, its own bucket


def test_same_answers_as_the_memory_limiter(workers):
    a, _, clock, _ = workers
    memory = MemoryLimiter(clock=clock, wall=clock)
    steps = [0, 0, 0, 0, 0.5, 0, 3, 0, 0, 0, 20, 0, 0]
    for step in steps:
        clock.at += step
        assert a.take("partner:m", 5) == pytest.approx(memory.take("partner:m", 5), abs=1e-6)


def test_two_workers_share_one_daily_quota_that_resets_at_vietnam_midnight(workers):
    a, b, clock, _ = workers
    end = vietnam_day_end(clock())
    assert [(a, b)[i % 2].count("partner:q", 5, end) for i in range(5)] == [0.0] * 5
    assert a.count("partner:q", 5, end) == pytest.approx(3600.0)
    assert b.count("partner:q", 5, end) == pytest.approx(3600.0)
    clock.at = end + 1.0  # 00:00:01 in Hanoi
    end = vietnam_day_end(clock())
    assert b.count("partner:q", 5, end) == 0.0


def test_keys_expire(workers):
    import redis

    a, _, clock, prefix = workers
    a.take("partner:e", 60)
    end = vietnam_day_end(clock())
    a.count("partner:e", 60, end)
    r = redis.Redis.from_url(REDIS_URL)
    bucket_ttl = r.ttl(f"{prefix}bucket:partner:e")
    assert 0 < bucket_ttl <= 62
    assert r.expiretime(f"{prefix}quota:partner:e:{end}") == end + 60
    r.close()
