"""Exponential backoff with a cap, shared by the jobs that retry (webhook deliveries, replies)."""

from __future__ import annotations

from datetime import timedelta


def exponential(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """`base` after the first failed attempt, doubled after each further one, at most `cap`."""
    delay: timedelta = base * (2 ** max(attempts - 1, 0))
    return min(delay, cap)
