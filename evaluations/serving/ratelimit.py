"""Per-key rate limits in the Django cache: inputs per second (burst), per minute, and per UTC day.

Fixed windows with atomic ``incr`` (atomic on Redis; locmem takes a lock), so several web processes
share one count when the cache is Redis. Each input is one query; a request over a limit is refused
whole and its inputs are given back, so a refused request costs the client nothing but the wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

clock = time.time  # patched by tests to freeze the windows


@dataclass(frozen=True)
class Limits:
    """A key's limits in inputs."""

    per_second: int
    per_minute: int
    per_day: int


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused and when to retry (seconds, rounded up)."""

    window: str
    limit: int
    retry_after: int

    @property
    def message(self) -> str:
        """A message that says what was hit and how to go on."""
        what = {"second": "burst limit", "minute": "per-minute rate limit", "day": "daily quota"}[self.window]
        return (
            f"The {what} of this key ({self.limit} inputs per {self.window}) is used up; retry after "
            f"{self.retry_after} s, send fewer inputs, or ask the deployment owner for higher limits."
        )


def _take(key: str, n: int, limit: int, ttl: int) -> bool:
    """Add ``n`` to the window's count; True when it stays within ``limit`` (else the inputs are given back)."""
    cache.add(key, 0, ttl)
    try:
        used = cache.incr(key, n)
    except ValueError:  # expired between add and incr
        cache.add(key, 0, ttl)
        used = cache.incr(key, n)
    if used > limit:
        _give_back(key, n)
        return False
    return True


def _give_back(key: str, n: int) -> None:
    try:
        cache.decr(key, n)
    except ValueError:  # the window expired meanwhile: nothing to give back
        pass


def consume(key_id: int, n: int, limits: Limits) -> Refusal | None:
    """Charge ``n`` inputs to the key's windows, or refuse the request (charging nothing)."""
    now = clock()
    second, minute, day = int(now), int(now // 60), int(now // 86400)
    windows = [
        ("second", f"serve:rl:{key_id}:s:{second}", limits.per_second, 2, 1),
        ("minute", f"serve:rl:{key_id}:m:{minute}", limits.per_minute, 120, (minute + 1) * 60 - now),
        ("day", f"serve:rl:{key_id}:d:{day}", limits.per_day, 86400 + 60, (day + 1) * 86400 - now),
    ]
    taken: list[tuple[str, int]] = []
    for window, cache_key, limit, ttl, wait in windows:
        if not _take(cache_key, n, limit, ttl):
            for earlier, _ in taken:
                _give_back(earlier, n)
            return Refusal(window=window, limit=limit, retry_after=max(1, int(-(-wait // 1))))
        taken.append((cache_key, limit))
    return None


def used_today(key_id: int) -> int:
    """Inputs the key has been answered today (UTC)."""
    return int(cache.get(f"serve:rl:{key_id}:d:{int(clock() // 86400)}") or 0)
