"""Per-sender rate limit (token bucket): Twilio long codes queue or reject bursts above ~1/s.

Two implementations with the same `acquire(sender) -> seconds waited` contract:
- `SenderRateLimiter` keeps its buckets in the process: the configured rate is per process, so
  N workers together send N times faster than the number allows.
- `RedisRateLimiter` keeps one bucket per sender in Redis, updated by an atomic Lua script, so
  every worker sharing the Redis shares the budget. `make_limiter` picks it when REDIS_URL is set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    def acquire(self, sender: str) -> float: ...


class SenderRateLimiter:
    def __init__(
        self,
        per_minute: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, tuple[float, float]] = {}  # sender -> (tokens, last refill)
        self._lock = threading.Lock()

    def acquire(self, sender: str) -> float:
        """Take one token for `sender`, sleeping as long as needed. Returns the time waited."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(sender, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            # Book the token now (possibly going negative) so concurrent callers queue up fairly.
            self._buckets[sender] = (tokens - 1, now)
        if wait:
            self._sleep(wait)
        return wait


# The same bucket arithmetic as SenderRateLimiter, run atomically inside Redis. The clock is the
# Redis server's (TIME), so workers on machines with skewed clocks still agree. Tokens may go
# negative: the caller books its slot, then sleeps until it comes. Redis truncates Lua numbers to
# integers on return, hence microseconds.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
tokens = math.min(burst, tokens + math.max(now - last, 0) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
-- Forget the bucket once it would be full again (plus a margin): idle senders cost nothing.
redis.call('PEXPIRE', KEYS[1], math.ceil(((burst - tokens) / rate + 60) * 1000))
return math.floor(wait * 1000000 + 0.5)
"""


class RedisRateLimiter:
    """A token bucket per sender shared by every process using the same Redis and key prefix.

    If Redis cannot be reached, sends are limited by an in-process bucket (logged) rather than
    failing the dispatch: a claimed group that errors is never retried automatically.
    """

    def __init__(
        self,
        client: Any,
        per_minute: float,
        *,
        burst: float = 1.0,
        prefix: str = "relance:ratelimit:",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        retry_after: float = 30.0,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(burst, 1.0)
        self.prefix = prefix
        self._client = client
        self._script = client.register_script(_TOKEN_BUCKET)
        self._clock = clock
        self._sleep = sleep
        self._fallback = SenderRateLimiter(per_minute, burst=burst, clock=clock, sleep=sleep)
        self._retry_after = retry_after
        self._down_until = float("-inf")  # after a failure, skip Redis for a while

    def acquire(self, sender: str) -> float:
        from redis.exceptions import RedisError

        if self._clock() < self._down_until:
            return self._fallback.acquire(sender)
        try:
            micros = self._script(keys=[self.prefix + sender], args=[self.rate, self.burst])
        except RedisError as exc:
            log.warning("rate limiter: Redis unavailable (%s), limiting in-process", exc)
            self._down_until = self._clock() + self._retry_after
            return self._fallback.acquire(sender)
        wait = int(micros) / 1_000_000
        if wait:
            self._sleep(wait)
        return wait


def make_limiter(per_minute: float, redis_url: str = "", **kwargs: Any) -> RateLimiter:
    """Redis-backed when a Redis URL is configured (several workers), in-process otherwise."""
    if not redis_url:
        return SenderRateLimiter(per_minute, **kwargs)
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    return RedisRateLimiter(client, per_minute, **kwargs)
