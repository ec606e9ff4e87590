"""Counters in the shared cache (Redis in production and tests), safe under concurrency.

A window opens at the first hit and lasts `window_seconds`; every hit is one atomic increment, so
N concurrent requests get N distinct counts and no more than `limit` of them are ever allowed. A
read-modify-write list of timestamps (DRF's `SimpleRateThrottle`) lets concurrent requests all see
the same stale count. On Redis a hit is one round trip: a script that increments the counter, opens
its window on the first hit and reads how long the window has left.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from apps.core.cache import CACHE_ERRORS, RedisScript

logger = logging.getLogger(__name__)
_PREFIX = "ratelimit"


@dataclass(frozen=True, slots=True)
class Window:
    count: int
    retry_after: int  # whole seconds until the window closes

    def exceeds(self, limit: int) -> bool:
        return self.count > limit


_HIT = RedisScript(
    """
    local count = redis.call('INCR', KEYS[1])
    local ttl = redis.call('PTTL', KEYS[1])
    if count == 1 or ttl < 0 then
        redis.call('PEXPIRE', KEYS[1], ARGV[1])
        ttl = tonumber(ARGV[1])
    end
    return {count, ttl}
    """
)


def _keys(name: str) -> tuple[str, str]:
    return f"{_PREFIX}:{name}:n", f"{_PREFIX}:{name}:t0"


def hit(name: str, *, window_seconds: int) -> Window:
    """Counts one hit and returns the count including it, and when the window closes.

    With the cache unreachable nothing can be counted: the hit is let through (count 0) and a
    warning logged. Refusing every login while Redis is down would turn a cache outage into an
    outage of the whole API; the password check still stands between a guess and an account.
    """
    try:
        return _hit(name, window_seconds=window_seconds)
    except CACHE_ERRORS:
        logger.warning("rate limit %s not counted: cache unavailable", name.split(":")[0])
        return Window(count=0, retry_after=0)


def _hit(name: str, *, window_seconds: int) -> Window:
    count_key, start_key = _keys(name)
    counted = _HIT.run(keys=[count_key], args=[window_seconds * 1000])
    if counted is not None:
        count, remaining_ms = counted
        return Window(count=int(count), retry_after=max(1, math.ceil(int(remaining_ms) / 1000)))
    # Any other cache (the embedded default's local memory): the same window, several calls.
    now = time.time()
    cache.add(start_key, now, timeout=window_seconds)
    cache.add(count_key, 0, timeout=window_seconds)
    try:
        count = cache.incr(count_key)
    except ValueError:  # the window closed between add and incr: this hit opens the next one
        cache.add(count_key, 1, timeout=window_seconds)
        count = 1
    opened = cache.get(start_key) or now
    return Window(count=count, retry_after=max(1, math.ceil(opened + window_seconds - now)))


def reset(name: str) -> None:
    try:
        cache.delete_many(list(_keys(name)))
    except CACHE_ERRORS:
        logger.warning("rate limit %s not reset: cache unavailable", name.split(":")[0])
