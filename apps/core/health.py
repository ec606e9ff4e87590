"""Health checks: liveness, readiness, and the full picture.

- live (`/api/v1/health/live`): the process answers. Nothing external is checked, so an outage of
  PostgreSQL or Redis never makes an orchestrator restart healthy web processes.
- ready (`/api/v1/health/ready`): this process can serve traffic now: the database (and the
  replica when one is configured) and the cache answer, and every migration is applied (a new
  image started before `migrate` takes no traffic). The broker is not required: events wait in
  the outbox while it is down.
- health (`/api/v1/health`): everything a request may depend on, the broker included.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.migrations.executor import MigrationExecutor

from apps.core.db_routing import REPLICA, replica_configured

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


def _check_replica() -> str | None:
    if not replica_configured():
        return None
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        (in_recovery,) = cursor.fetchone()
    return "streaming" if in_recovery else "not_in_recovery"


_migrations_applied = False


def _check_migrations() -> None:
    global _migrations_applied
    if _migrations_applied:  # once applied they stay applied for the life of this process
        return
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise RuntimeError(f"{len(pending)} migration(s) not applied")
    _migrations_applied = True


CHECKS = {
    "database": _check_database,
    "replica": _check_replica,
    "cache": _check_cache,
    "broker": _check_broker,
}
READINESS_CHECKS = {
    "database": _check_database,
    "replica": _check_replica,
    "cache": _check_cache,
    "migrations": _check_migrations,
}


def run_health_checks(checks=None) -> tuple[bool, dict[str, dict[str, object]]]:
    """Runs the checks (all of `CHECKS` by default); the replica is left out when none is set."""
    results: dict[str, dict[str, object]] = {}
    healthy = True
    for name, check in (checks or CHECKS).items():
        if name == "replica" and not replica_configured():
            continue
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


def run_readiness_checks() -> tuple[bool, dict[str, dict[str, object]]]:
    return run_health_checks(READINESS_CHECKS)
