"""Per-key rate limits in the Django cache: inputs per second (burst), per minute, and per UTC day.

Fixed windows, so several web processes share one count when the cache is Redis. On Redis one Lua script
(one round trip, atomic) checks the three windows and charges them only when all have room, setting each
window's expiry when it has none; on a monitored deployment the same check runs inside the extraction
monitor's script, which reads the key's monitor log in that round trip (:mod:`.monitor`). On any other
cache (locmem: one process) the windows are charged with ``add`` + ``incr`` and given back on refusal.
Each input is one query; a request over a limit is refused whole and charges nothing, so a refused request
costs the client nothing but the wait.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache, caches

from evaluations.serving import rediscache

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


#: The check as a Lua function, shared by the limiter's own script and the monitor's (which charges the
#: windows and reads the key's log in the same round trip). The three windows are KEYS[k .. k + 2]; ARGV[a]
#: is n, then come the limit and ttl of each window. Returns 0 when charged, else the 1-based index of the
#: first window without room (nothing charged then).
CHECK_AND_CHARGE_LUA = """
local function check_and_charge(k, a)
  local n = tonumber(ARGV[a])
  for i = 0, 2 do
    local used = tonumber(redis.call('GET', KEYS[k + i]) or '0')
    if used + n > tonumber(ARGV[a + 2 * i + 1]) then
      return i + 1
    end
  end
  for i = 0, 2 do
    redis.call('INCRBY', KEYS[k + i], n)
    if redis.call('TTL', KEYS[k + i]) < 0 then
      redis.call('EXPIRE', KEYS[k + i], tonumber(ARGV[a + 2 * i + 2]))
    end
  end
  return 0
end
"""
_CHECK_AND_CHARGE = CHECK_AND_CHARGE_LUA + "return check_and_charge(1, 1)\n"

#: One window: its name, cache key, limit, the key's ttl and the seconds until it reopens.
Window = tuple[str, str, int, int, float]


def key_windows(key_id: int, limits: Limits) -> list[Window]:
    """The key's current second, minute and day windows."""
    now = clock()
    second, minute, day = int(now), int(now // 60), int(now // 86400)
    return [
        ("second", f"serve:rl:{key_id}:s:{second}", limits.per_second, 2, 1),
        ("minute", f"serve:rl:{key_id}:m:{minute}", limits.per_minute, 120, (minute + 1) * 60 - now),
        ("day", f"serve:rl:{key_id}:d:{day}", limits.per_day, 86400 + 60, (day + 1) * 86400 - now),
    ]


def script_keys_and_args(backend: Any, windows: list[Window], n: int) -> tuple[list[str], list[int]]:
    """The KEYS and ARGV of :data:`CHECK_AND_CHARGE_LUA` charging ``n`` inputs to ``windows`` on Redis."""
    args: list[int] = [n]
    for _, _, limit, ttl, _ in windows:
        args += [limit, ttl]
    return [backend.make_key(w[1]) for w in windows], args


def refusal(windows: list[Window], refused: int) -> Refusal | None:
    """The refusal for a check's answer: None when it charged (0), else window ``refused`` (1-based) refused."""
    if refused == 0:
        return None
    name, _, limit, _, wait = windows[refused - 1]
    return Refusal(window=name, limit=limit, retry_after=max(1, int(-(-wait // 1))))


def charge(windows: list[Window], n: int) -> int:
    """Charge ``n`` inputs to ``windows`` if all have room: 0, else the 1-based index of the first without."""
    backend = caches["default"]
    if rediscache.is_redis(backend):
        keys, args = script_keys_and_args(backend, windows, n)
        return int(rediscache.run(backend, _CHECK_AND_CHARGE, keys, args))
    taken: list[str] = []
    for index, (_, cache_key, limit, ttl, _) in enumerate(windows, start=1):
        if not _take(cache_key, n, limit, ttl):
            for earlier in taken:
                _give_back(earlier, n)
            return index
        taken.append(cache_key)
    return 0


def consume(key_id: int, n: int, limits: Limits, *, monitor: Any = None) -> Refusal | None:
    """Charge ``n`` inputs to the key's windows, or refuse the request (charging nothing).

    ``monitor`` is the request's extraction-monitor ticket on a monitored deployment
    (:class:`evaluations.serving.monitor.Ticket`): the same check then runs inside the monitor's exchange
    with the key's log, in the same round trip.
    """
    current = key_windows(key_id, limits)
    if monitor is not None:
        return monitor.charge(current, n)
    return refusal(current, charge(current, n))


def used_today(key_id: int) -> int:
    """Inputs the key has been answered today (UTC)."""
    return int(cache.get(f"serve:rl:{key_id}:d:{int(clock() // 86400)}") or 0)
