"""Paydesk's business metrics, served at /api/v1/metrics beside django-prometheus's own.

Two kinds, by where the truth lives:

- Instruments observed where the thing happens, in the process doing it: gateway call latency
  (`observe_gateway`, called by `apps.gateways.calls.gateway_call`, the one way payments and
  deposits call a gateway), review decision latency (`observe_review_decision`, once a decision
  commits) and Celery task outcomes (Celery signals). Under gunicorn every worker process writes
  them to PROMETHEUS_MULTIPROC_DIR and a scrape adds them up (`docker/gunicorn.conf.py`); a Celery
  worker serves its own on CELERY_WORKER_METRICS_PORT.
- State read from the database at scrape time (`DatabaseStateCollector`): payments by status and
  gateway, the review queue, ledger entries, open dead letters, the outbox backlog, webhook lag,
  replica lag. Every process sees the same numbers, restarts lose nothing, and the queries are
  aggregates over indexed columns, run at most once per METRICS_DB_CACHE_SECONDS.

Core imports no domain app: core collects its own plumbing (dead letters, outbox, replica), and
each domain app registers its families and collector from its `AppConfig.ready()` with
`register_state_collector` (see `apps/<app>/metrics.py`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from celery import signals
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# --- instruments ---------------------------------------------------------------------------------

GATEWAY_LATENCY = Histogram(
    "paydesk_gateway_request_duration_seconds",
    "Payment gateway calls (authorize, capture, void) by gateway, operation and outcome.",
    ["gateway", "operation", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
REVIEW_DECISION = Histogram(
    "paydesk_review_decision_seconds",
    "Time from a payment being held for review to a reviewer's decision.",
    ["decision"],
    buckets=(60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400),
)
CELERY_TASKS = Counter(
    "paydesk_celery_tasks",
    "Celery task runs by task and outcome (success, failure, retry, revoked, rejected).",
    ["task", "outcome"],
)

# Gateway errors by the name of their class (apps/core never imports a domain app).
_ERROR_OUTCOMES = {"GatewayResponseLost": "lost", "GatewayRetryableError": "retryable_error"}


def observe_gateway(*, gateway: str, operation: str, outcome: Any, started: float) -> None:
    """One gateway call that began at `started` (time.monotonic()); `outcome` is the gateway's
    result (its status is the label) or the error it raised."""
    seconds = time.monotonic() - started
    if isinstance(outcome, Exception):
        names = [klass.__name__ for klass in type(outcome).__mro__]
        label = next((_ERROR_OUTCOMES[name] for name in names if name in _ERROR_OUTCOMES), "error")
    else:
        label = str(getattr(outcome, "status", "unknown"))
    GATEWAY_LATENCY.labels(gateway=gateway or "unknown", operation=operation, outcome=label).observe(seconds)


def observe_review_decision(*, decision: str, seconds: float) -> None:
    """One reviewer's decision, `seconds` after the payment was held (call it once the decision has
    committed, so a rolled-back decision is never observed)."""
    REVIEW_DECISION.labels(decision=decision).observe(max(seconds, 0.0))


# --- Celery task outcomes (observed in the worker process that ran the task) --------------------


def _count_task(task: Any, outcome: str) -> None:
    name = getattr(task, "name", None) or str(task or "unknown")
    CELERY_TASKS.labels(task=name, outcome=outcome).inc()


@signals.task_success.connect
def _task_succeeded(sender=None, **kwargs) -> None:
    _count_task(sender, "success")


@signals.task_failure.connect
def _task_failed(sender=None, **kwargs) -> None:
    _count_task(sender, "failure")


@signals.task_retry.connect
def _task_retried(sender=None, **kwargs) -> None:
    _count_task(sender, "retry")


@signals.task_revoked.connect
def _task_revoked(sender=None, request=None, **kwargs) -> None:
    _count_task(getattr(request, "task", None) or sender, "revoked")


@signals.task_rejected.connect
def _task_rejected(message=None, **kwargs) -> None:
    headers = getattr(message, "headers", None) or {}
    _count_task(headers.get("task"), "rejected")


@signals.worker_init.connect
def _serve_worker_metrics(**kwargs) -> None:
    """A worker's own exporter: its task outcomes and gateway calls, for Prometheus to scrape."""
    port = getattr(settings, "CELERY_WORKER_METRICS_PORT", 0)
    if not port:
        return
    if os.environ.get(MULTIPROC_ENV):
        _clear_multiprocess_dir(Path(os.environ[MULTIPROC_ENV]))
    start_http_server(port, addr=settings.CELERY_WORKER_METRICS_ADDR, registry=_process_registry())
    logger.info("worker metrics on %s:%s", settings.CELERY_WORKER_METRICS_ADDR, port)


@signals.worker_process_shutdown.connect
def _pool_process_gone(pid=None, **kwargs) -> None:
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid or os.getpid())


def _clear_multiprocess_dir(path: Path) -> None:
    """Files left by a previous run would be added to this one's counters (only prometheus_client's
    own `*.db` files are removed: whatever else the directory holds is not ours)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def _process_registry() -> CollectorRegistry:
    """This process's metrics, or all processes' under multiprocess mode."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


# --- state read from the database at scrape time -------------------------------------------------

Sample = tuple[str, dict[str, str], float]  # (family name, labels, value)
StateSource = Callable[[], Iterable[Sample]]
FamilySpec = tuple[str, str, list[str]]  # (type: "gauge" or "counter", help, label names)

_FAMILIES: dict[str, FamilySpec] = {
    # name: (type, help, label names) — core's own; domain apps add theirs when they register
    "paydesk_dead_letters_open": ("gauge", "Dead letters not yet replayed, by kind of work.", ["kind"]),
    "paydesk_outbox_backlog": ("gauge", "Outbox events not yet delivered to every consumer.", []),
    "paydesk_outbox_oldest_undelivered_age_seconds": (
        "gauge",
        "Age of the oldest undelivered outbox event (0 when none).",
        [],
    ),
    "paydesk_replica_lag_seconds": ("gauge", "How far the read replica's replay is behind the primary.", []),
}
_SOURCES: dict[str, StateSource] = {}
_STATE_CACHE_KEY = "metrics:database-state:v1"


def register_state_collector(source: StateSource, *, families: Mapping[str, FamilySpec]) -> StateSource:
    """Adds `source` to what a scrape reads from the database, with the `families` its samples
    belong to. Called from a domain app's `AppConfig.ready()`; registering the same function (by
    qualified name) again replaces it, so a reload never counts twice."""
    for name, spec in families.items():
        known = _FAMILIES.get(name)
        if known is not None and known != spec:
            raise ValueError(f"metric family {name!r} is already registered as {known}")
        _FAMILIES[name] = spec
    _SOURCES[f"{source.__module__}.{source.__qualname__}"] = source
    return source


def state_families() -> dict[str, FamilySpec]:
    """Every family the database state may hold: name → (type, help, label names)."""
    return dict(_FAMILIES)


def age_seconds(oldest: Any) -> float:
    """Seconds since `oldest` (an aware datetime), 0 for None: the age gauges' value."""
    return max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0


def _plumbing_samples() -> list[Sample]:
    from apps.core.models import DeadLetter, OutboxEvent

    letters = (
        DeadLetter.objects.filter(replayed_at__isnull=True).order_by().values("kind").annotate(n=Count("pk"))
    )
    backlog = OutboxEvent.objects.filter(delivered_at__isnull=True).aggregate(
        n=Count("pk"), oldest=Min("created_at")
    )
    return [
        *(("paydesk_dead_letters_open", {"kind": row["kind"]}, row["n"]) for row in letters),
        ("paydesk_outbox_backlog", {}, backlog["n"]),
        ("paydesk_outbox_oldest_undelivered_age_seconds", {}, age_seconds(backlog["oldest"])),
    ]


def _replica_samples() -> list[Sample]:
    from apps.core.db_routing import REPLICA, replica_configured

    if not replica_configured():
        return []
    with connections[REPLICA].cursor() as cursor:
        # Caught up (nothing received left to replay) is 0, however long ago the last write was.
        cursor.execute(
            "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
            " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
        )
        (lag,) = cursor.fetchone()
    return [("paydesk_replica_lag_seconds", {}, float(lag))]


_CORE_SOURCES: tuple[StateSource, ...] = (_plumbing_samples, _replica_samples)


def database_state() -> list[Sample]:
    """The database-derived samples, shared by every process for METRICS_DB_CACHE_SECONDS."""
    seconds = settings.METRICS_DB_CACHE_SECONDS
    if seconds > 0:
        try:
            cached = cache.get(_STATE_CACHE_KEY)
        except Exception:
            cached = None
        if cached is not None:
            return cached
    sources = (*_CORE_SOURCES, *_SOURCES.values())
    samples = [sample for source in sources for sample in source()]
    if seconds > 0:
        try:
            cache.set(_STATE_CACHE_KEY, samples, timeout=seconds)
        except Exception:
            logger.warning("metrics: database state not cached", exc_info=True)
    return samples


class DatabaseStateCollector(Collector):
    """Collects `database_state()` at scrape time; a database outage reports up=0, never an error."""

    def describe(self) -> list[Metric]:
        return []  # no database access when registered

    def collect(self):
        started = time.monotonic()
        try:
            samples = database_state()
        except Exception:
            logger.warning("metrics: database state unavailable", exc_info=True)
            yield GaugeMetricFamily("paydesk_metrics_database_up", "Whether the database state was read.", 0)
            return
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for name, (kind, help_text, label_names) in _FAMILIES.items():
            family_class = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            families[name] = family_class(name, help_text, labels=label_names)
        for name, labels, value in samples:
            families[name].add_metric([labels[label] for label in _FAMILIES[name][2]], value)
        yield from (family for family in families.values() if family.samples)
        yield GaugeMetricFamily("paydesk_metrics_database_up", "Whether the database state was read.", 1)
        yield GaugeMetricFamily(
            "paydesk_metrics_database_seconds",
            "Time taken to read the database state for this scrape.",
            time.monotonic() - started,
        )


STATE_REGISTRY = CollectorRegistry(auto_describe=False)
STATE_REGISTRY.register(DatabaseStateCollector())


def exposition() -> tuple[bytes, str]:
    """The text a scrape receives: this process's (or all gunicorn workers') metrics + database state."""
    return generate_latest(_process_registry()) + generate_latest(STATE_REGISTRY), CONTENT_TYPE_LATEST
