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
import threading
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


def _keys(name: str) -> tuple[str, str, str]:
    return f"{_PREFIX}:{name}:n", f"{_PREFIX}:{name}:t0", f"{_PREFIX}:{name}:backoff"


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
    count_key, start_key, _ = _keys(name)
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


def peek(name: str) -> int:
    """The count of the window open now (0 when none is, or the cache is unreachable)."""
    try:
        return int(cache.get(_keys(name)[0]) or 0)
    except CACHE_ERRORS:
        return 0


# --- progressive backoff ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    allowed: bool
    count: int  # attempts remembered, this one included when allowed
    retry_after: int  # whole seconds until the next attempt is allowed (0 when allowed)


def backoff_lock_ms(count: int, *, free: int, base_ms: int, cap_ms: int) -> int:
    """How long `count` remembered attempts lock the next one out: nothing for the first `free`,
    then `base` for the one at the limit, doubling with each attempt after it, at most `cap`."""
    if count < free:
        return 0
    return min(base_ms * 2 ** min(count - free, 40), cap_ms)


# State: a hash {n: attempts, t: ms of the last one}. An attempt is let through (and counted) only
# once the lock its predecessors earned is over; the state is forgotten `base` after that lock.
_BACKOFF = RedisScript(
    """
    local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
    local last = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
    local now, free, base, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
    local function lock(count)
        if count < free then return 0 end
        return math.min(base * 2 ^ math.min(count - free, 40), cap)
    end
    local wait = last + lock(n) - now
    if wait > 0 then return {0, n, wait} end
    n = n + 1
    redis.call('HSET', KEYS[1], 'n', n, 't', now)
    redis.call('PEXPIRE', KEYS[1], lock(n) + base)
    return {1, n, 0}
    """
)
_local_lock = threading.Lock()


def attempt(name: str, *, free: int, base_seconds: int, cap_seconds: int) -> Attempt:
    """Admits and counts one attempt unless the attempts counted before it still lock it out.

    The first `free` attempts pass; the one after them waits `base_seconds` after the last, and
    each further one waits twice as long as the previous lock, up to `cap_seconds`. Counting
    happens before the guarded work (the password check), so concurrent attempts are admitted one
    at a time. With the cache unreachable the attempt passes uncounted (see `hit`).
    """
    now_ms = int(time.time() * 1000)
    base_ms, cap_ms = base_seconds * 1000, max(cap_seconds, base_seconds) * 1000
    key = _keys(name)[2]
    try:
        result = _BACKOFF.run(keys=[key], args=[now_ms, free, base_ms, cap_ms])
        if result is None:
            with _local_lock:  # local memory is per process: a process-wide lock makes it atomic
                result = _attempt_by_hand(key, now_ms=now_ms, free=free, base_ms=base_ms, cap_ms=cap_ms)
    except CACHE_ERRORS:
        logger.warning("rate limit %s not counted: cache unavailable", name.split(":")[0])
        return Attempt(allowed=True, count=0, retry_after=0)
    allowed, count, wait_ms = (int(value) for value in result)
    return Attempt(
        allowed=bool(allowed),
        count=count,
        retry_after=max(1, math.ceil(wait_ms / 1000)) if not allowed else 0,
    )


def _attempt_by_hand(key: str, *, now_ms: int, free: int, base_ms: int, cap_ms: int) -> tuple[int, int, int]:
    count, last = cache.get(key) or (0, 0)
    wait = last + backoff_lock_ms(count, free=free, base_ms=base_ms, cap_ms=cap_ms) - now_ms
    if wait > 0:
        return 0, count, wait
    count += 1
    expires_ms = backoff_lock_ms(count, free=free, base_ms=base_ms, cap_ms=cap_ms) + base_ms
    cache.set(key, (count, now_ms), timeout=math.ceil(expires_ms / 1000))
    return 1, count, 0


def reset(name: str) -> None:
    try:
        cache.delete_many(list(_keys(name)))
    except CACHE_ERRORS:
        logger.warning("rate limit %s not reset: cache unavailable", name.split(":")[0])
