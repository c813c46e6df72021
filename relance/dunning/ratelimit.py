"""Per-sender rate limit (token bucket): Twilio long codes queue or reject bursts above ~1/s.

In-process: each worker process has its own buckets, so the configured rate is per process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
