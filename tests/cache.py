"""The tests' cache, emptied the one safe way."""

from django.core.cache import cache


def empty_cache() -> None:
    """Empties this worker's cache: only its own keys (config.settings.test gives each xdist worker
    its own key prefix). Never `clear()` on Redis: that is FLUSHDB, which also empties the other
    worker's keys under its feet (its rate-limit windows, cached sessions and idempotency answers),
    whatever test it is running."""
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()
