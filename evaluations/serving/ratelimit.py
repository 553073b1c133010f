"""Per-key rate limits in the Django cache: inputs per second (burst), per minute, and per UTC day.

Fixed windows, so several web processes share one count when the cache is Redis. On Redis one Lua script
(one round trip, atomic) checks the three windows and charges them only when all have room, setting each
window's expiry when it has none. On any other cache (locmem: one process) the windows are charged with
``add`` + ``incr`` and given back on refusal. Each input is one query; a request over a limit is refused
whole and charges nothing, so a refused request costs the client nothing but the wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache, caches

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


# KEYS: the windows; ARGV: n, then limit and ttl of each window. Returns 0 when charged, else the
# 1-based index of the first window without room (nothing charged then).
_CHECK_AND_CHARGE = """
local n = tonumber(ARGV[1])
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + n > tonumber(ARGV[2 * i]) then
    return i
  end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], n)
  if redis.call('TTL', KEYS[i]) < 0 then
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 * i + 1]))
  end
end
return 0
"""
_scripts: dict[int, Any] = {}


def _redis_consume(backend: Any, windows: list[tuple[str, str, int, int, float]], n: int) -> int | None:
    """On Django's Redis cache: the script's answer (0 charged, i refused by window i); None on other caches."""
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(backend, RedisCache):
        return None
    client = backend._cache.get_client(None, write=True)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_CHECK_AND_CHARGE)
    args: list[int] = [n]
    for _, _, limit, ttl, _ in windows:
        args += [limit, ttl]
    return int(script(keys=[backend.make_key(w[1]) for w in windows], args=args, client=client))


def _refusal(window: tuple[str, str, int, int, float]) -> Refusal:
    name, _, limit, _, wait = window
    return Refusal(window=name, limit=limit, retry_after=max(1, int(-(-wait // 1))))


def consume(key_id: int, n: int, limits: Limits) -> Refusal | None:
    """Charge ``n`` inputs to the key's windows, or refuse the request (charging nothing)."""
    now = clock()
    second, minute, day = int(now), int(now // 60), int(now // 86400)
    windows = [
        ("second", f"serve:rl:{key_id}:s:{second}", limits.per_second, 2, 1),
        ("minute", f"serve:rl:{key_id}:m:{minute}", limits.per_minute, 120, (minute + 1) * 60 - now),
        ("day", f"serve:rl:{key_id}:d:{day}", limits.per_day, 86400 + 60, (day + 1) * 86400 - now),
    ]
    refused = _redis_consume(caches["default"], windows, n)
    if refused is not None:
        return None if refused == 0 else _refusal(windows[refused - 1])
    taken: list[tuple[str, int]] = []
    for window, cache_key, limit, ttl, wait in windows:
        if not _take(cache_key, n, limit, ttl):
            for earlier, _ in taken:
                _give_back(earlier, n)
            return _refusal((window, cache_key, limit, ttl, wait))
        taken.append((cache_key, limit))
    return None


def used_today(key_id: int) -> int:
    """Inputs the key has been answered today (UTC)."""
    return int(cache.get(f"serve:rl:{key_id}:d:{int(clock() // 86400)}") or 0)
