"""Read-through cache invalidated by bumping a version, never by scanning keys.

Each scope (one wallet, one owner's payment list, ...) has a version counter; a cached value lives
under `<scope>:<key>` together with the version it was loaded under, and a read fetches the counter
and the value in one round trip (MGET). A write bumps the versions of what it changed after its
transaction commits, so the next read finds a value of an older version, loads fresh rows and
stores them over it; stale values are never served and expire. A counter that was evicted
restarts from the clock, not from 1, so it can never meet an old value's version again. Redis being down costs speed, never correctness: reads fall back to the
database, and money is never decided from the cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import transaction
from django_redis import get_redis_connection
from django_redis.exceptions import ConnectionInterrupted
from redis.commands.core import Script
from redis.exceptions import RedisError

from apps.core import db_routing

logger = logging.getLogger(__name__)

T = TypeVar("T")
TIMEOUT_SECONDS = 300
CACHE_ERRORS = (RedisError, ConnectionInterrupted, OSError)


def read_through(*, scope: str, key: str, load: Callable[[], T | None]) -> T | None:
    """The cached value for `key` in `scope`, else `load()` (stored unless it is None)."""
    version_key, value_key = f"{scope}:version", f"{scope}:{key}"
    try:
        found = cache.get_many([version_key, value_key])  # one round trip
        version = found.get(version_key)
        if version is None:
            cache.add(version_key, time.time_ns(), timeout=None)
            version = cache.get(version_key)
    except CACHE_ERRORS:
        logger.warning("cache unavailable; reading the database", exc_info=True)
        return load()
    cached = found.get(value_key)
    if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == version:
        return cached[1]
    # Filled from the primary: a lagging replica read here would be cached as current until TTL.
    with db_routing.primary():
        value = load()
    if value is not None:
        try:
            cache.set(value_key, (version, value), timeout=TIMEOUT_SECONDS)
        except CACHE_ERRORS:
            logger.warning("cache unavailable; value not stored", exc_info=True)
    return value


class RedisScript:
    """A Lua script run on the Redis server behind the default cache: several commands, one round
    trip, atomically. Keys are the cache's own (prefix and version applied). The script must return
    a value: `run` returns None only when the cache is not Redis (the embedded default's local
    memory), and the caller then does the same by hand.
    """

    def __init__(self, source: str) -> None:
        # No client of its own: each run passes the default cache's (`get_redis_connection`).
        self._script = Script(None, source.encode())  # type: ignore[arg-type]

    def run(self, *, keys: list[str], args: Sequence[str | int | float] = ()) -> Any:
        try:
            client = get_redis_connection("default")
        except NotImplementedError:
            return None
        return self._script(keys=[cache.make_key(key) for key in keys], args=args, client=client)


# Bumps only the versions that exist (a scope never read has nothing cached to invalidate) and
# returns how many it bumped.
_BUMP = RedisScript(
    """
    local bumped = 0
    for _, key in ipairs(KEYS) do
        if redis.call('EXISTS', key) == 1 then
            redis.call('INCR', key)
            bumped = bumped + 1
        end
    end
    return bumped
    """
)


def bump(scopes: Iterable[str]) -> int:
    """Invalidates what is cached under each scope; returns how many scopes had anything cached."""
    keys = [f"{scope}:version" for scope in scopes]
    try:
        bumped = _BUMP.run(keys=keys)
        if bumped is None:
            bumped = 0
            for key in keys:
                try:
                    cache.incr(key)
                    bumped += 1
                except ValueError:
                    pass
        return int(bumped)
    except CACHE_ERRORS:
        # Stale for at most TIMEOUT_SECONDS; money is never decided from the cache.
        logger.warning("could not invalidate %s", keys, exc_info=True)
        return 0


def bump_on_commit(scopes: Iterable[str]) -> None:
    scopes = list(scopes)
    transaction.on_commit(lambda: bump(scopes))
