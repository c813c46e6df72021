"""Sender rate limit shared through Redis: two limiters (two workers) share one budget per sender.

Runs against the real Redis on localhost:6379 (as the worker does with REDIS_URL set); every test
uses its own key prefix and deletes its keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from relance.dunning.ratelimit import (
    RedisRateLimiter,
    SenderRateLimiter,
    make_limiter,
)

REDIS_URL = "redis://localhost:6379/0"
SENDER = "+33757000000"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(REDIS_URL)
    connection.ping()
    yield connection
    connection.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    value = f"test:ratelimit:{uuid.uuid4().hex}:"
    yield value
    for key in client.scan_iter(match=value + "*"):
        client.delete(key)


def _limiter(client: redis.Redis, prefix: str, slept: list[float], **kw: float) -> RedisRateLimiter:
    return RedisRateLimiter(
        client, kw.pop("per_minute", 60), prefix=prefix, sleep=slept.append, **kw
    )


def test_two_limiters_share_one_budget_per_sender(client: redis.Redis, prefix: str) -> None:
    slept_a: list[float] = []
    slept_b: list[float] = []
    worker_a = _limiter(client, prefix, slept_a, burst=3)
    worker_b = _limiter(client, prefix, slept_b, burst=3)
    # A burst of 3 at 1/s: two go through A, the third through B, and B's next one must wait
    # about a second: B saw A's sends.
    assert worker_a.acquire(SENDER) == 0.0
    assert worker_a.acquire(SENDER) == 0.0
    assert worker_b.acquire(SENDER) == 0.0
    waited = worker_b.acquire(SENDER)
    assert 0.9 < waited <= 1.0
    # Booked slots queue up across workers: A's next send comes after B's.
    assert 1.9 < worker_a.acquire(SENDER) <= 2.0
    assert slept_b == [waited] and len(slept_a) == 1
    # Another sender has its own bucket.
    assert worker_b.acquire("+33757000001") == 0.0
    assert client.exists(prefix + SENDER) and client.pttl(prefix + SENDER) > 0


def test_in_process_limiters_do_not_share(client: redis.Redis) -> None:
    """What the Redis limiter fixes: two in-process buckets each allow the full rate."""
    first, second = (
        SenderRateLimiter(60, sleep=lambda s: None),
        SenderRateLimiter(60, sleep=lambda s: None),
    )
    assert first.acquire(SENDER) == 0.0 and second.acquire(SENDER) == 0.0


def test_make_limiter_uses_redis_when_configured(client: redis.Redis, prefix: str) -> None:
    slept: list[float] = []
    shared = make_limiter(60, REDIS_URL, prefix=prefix, sleep=slept.append)
    other = make_limiter(60, REDIS_URL, prefix=prefix, sleep=slept.append)
    assert isinstance(shared, RedisRateLimiter)
    assert shared.acquire(SENDER) == 0.0
    assert other.acquire(SENDER) > 0.9  # one token per second, already taken by the other
    assert isinstance(make_limiter(60, ""), SenderRateLimiter)


def test_redis_down_falls_back_to_an_in_process_bucket(prefix: str) -> None:
    clock = [100.0]
    slept: list[float] = []
    calls: list[str] = []

    class Down:
        def register_script(self, _source: str):  # type: ignore[no-untyped-def]
            def run(**_kw: object) -> int:
                calls.append("script")
                raise redis.exceptions.ConnectionError("connection refused")

            return run

    limiter = RedisRateLimiter(
        Down(), 60, prefix=prefix, clock=lambda: clock[0], sleep=slept.append
    )
    assert limiter.acquire(SENDER) == 0.0
    assert limiter.acquire(SENDER) == 1.0  # still limited, in this process
    assert calls == ["script"]  # Redis is not asked again for a while...
    clock[0] += 31
    assert limiter.acquire(SENDER) == 0.0
    assert calls == ["script", "script"]  # ...then it is
    assert slept == [1.0]


def test_real_unreachable_redis_is_survived() -> None:
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = RedisRateLimiter(unreachable, 60, sleep=lambda s: None)
    assert limiter.acquire(SENDER) == 0.0


def test_concurrent_workers_together_respect_the_rate(prefix: str) -> None:
    """Two workers (threads, each with its own connection) sending 10 texts each at 20/s from
    one number: 20 sends need at least 19 intervals of 50 ms, whoever sends them."""
    import threading
    import time

    def work() -> None:
        limiter = make_limiter(1200, REDIS_URL, prefix=prefix)
        for _ in range(10):
            limiter.acquire(SENDER)

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert time.monotonic() - started >= 19 * 0.05 * 0.95


def test_worker_limiter_follows_redis_url(
    monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    from relance.settings import get_settings
    from relance.worker import jobs

    for url, expected in ((REDIS_URL, RedisRateLimiter), ("", SenderRateLimiter)):
        monkeypatch.setenv("REDIS_URL", url)
        get_settings.cache_clear()
        jobs._limiter.cache_clear()
        assert isinstance(jobs._limiter(), expected)
    jobs._limiter.cache_clear()
