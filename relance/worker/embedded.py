"""In-process scheduler: runs the periodic jobs in a daemon thread when no broker is configured.

One failing job is logged and retried at its next interval; it never stops the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Job = tuple[float, Callable[[], Any]]


class EmbeddedScheduler:
    def __init__(
        self,
        schedule: dict[str, Job],
        *,
        clock: Callable[[], float] = time.monotonic,
        tick_seconds: float = 1.0,
    ) -> None:
        self.schedule = dict(schedule)
        self._clock = clock
        self._tick = tick_seconds
        self._next: dict[str, float] = dict.fromkeys(self.schedule, 0.0)  # all due at start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs: dict[str, int] = dict.fromkeys(self.schedule, 0)
        self.failures: dict[str, int] = dict.fromkeys(self.schedule, 0)

    def run_pending(self) -> list[str]:
        """Run every job whose time has come; returns their names (tests call this directly)."""
        ran = []
        for name, (interval, job) in self.schedule.items():
            now = self._clock()
            if now < self._next[name]:
                continue
            self._next[name] = now + interval
            try:
                job()
            except Exception:
                self.failures[name] += 1
                log.exception("worker job %s failed", name)
            self.runs[name] += 1
            ran.append(name)
        return ran

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_pending()
            self._stop.wait(self._tick)

    def start(self) -> EmbeddedScheduler:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="relance-worker", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_forever(self) -> None:
        """Foreground mode (`relance worker`); returns on KeyboardInterrupt."""
        try:
            self._loop()
        except KeyboardInterrupt:
            self._stop.set()
