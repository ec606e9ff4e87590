"""Outbound webhooks' metrics: attempts by outcome (counted where they happen, in the worker), and
the backlog read from the database at scrape time (registered with apps.core.metrics)."""

from __future__ import annotations

from django.utils import timezone
from prometheus_client import Counter

from apps.core import metrics
from apps.core.metrics import Sample

DELIVERIES = Counter(
    "paydesk_webhook_deliveries",
    "Outbound webhook delivery attempts by outcome: succeeded, retrying (failed, tried again later), "
    "failed (the last attempt failed: given up).",
    ["outcome"],
)
# (no label is touched at import: under PROMETHEUS_MULTIPROC_DIR that would open a value file
# before the worker has made the directory)

FAMILIES: dict[str, metrics.FamilySpec] = {
    "paydesk_webhook_deliveries_pending": ("gauge", "Outbound webhook deliveries not yet done.", []),
    "paydesk_webhook_deliveries_due": (
        "gauge",
        "Outbound webhook deliveries whose attempt is due now and not yet made (the workers' backlog).",
        [],
    ),
    "paydesk_webhook_deliveries_oldest_pending_age_seconds": (
        "gauge",
        "Age of the oldest outbound webhook delivery not yet done (0 when none).",
        [],
    ),
    "paydesk_webhook_deliveries_overdue_seconds": (
        "gauge",
        "How long the most overdue due delivery has waited past its time (0 when none).",
        [],
    ),
}


def delivery_samples() -> list[Sample]:
    from apps.events.selectors import delivery_backlog

    backlog = delivery_backlog(now=timezone.now())
    return [
        ("paydesk_webhook_deliveries_pending", {}, backlog["pending"]),
        ("paydesk_webhook_deliveries_due", {}, backlog["overdue"]),
        ("paydesk_webhook_deliveries_oldest_pending_age_seconds", {}, metrics.age_seconds(backlog["oldest"])),
        ("paydesk_webhook_deliveries_overdue_seconds", {}, metrics.age_seconds(backlog["earliest_due"])),
    ]


def connect() -> None:
    metrics.register_state_collector(delivery_samples, families=FAMILIES)
