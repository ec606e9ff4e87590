"""Health checks of what a request depends on: the database, the cache and the broker."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache() -> None:
    key = "health:probe"
    cache.set(key, "1", timeout=10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return what was written")


def _check_broker() -> str | None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"  # the embedded default runs tasks inline: there is no broker to reach
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return None


CHECKS = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}


def run_health_checks() -> tuple[bool, dict[str, dict[str, object]]]:
    results: dict[str, dict[str, object]] = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            mode = check()
        except Exception as exc:
            healthy = False
            logger.warning("health check %s failed: %s", name, type(exc).__name__)
            results[name] = {"status": "down", "error": type(exc).__name__}
            continue
        results[name] = {"status": "ok", "latency_ms": round((time.monotonic() - started) * 1000, 1)}
        if mode:
            results[name]["mode"] = mode
    return healthy, results
