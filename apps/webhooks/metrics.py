"""Inbound webhooks' metrics, registered with core's (`apps.core.metrics`) from
`WebhooksConfig.ready()`: the backlog and lag of events waiting for a worker, and dead events."""

from __future__ import annotations

from django.db.models import Count, Min

from apps.core import metrics
from apps.core.metrics import Sample
from apps.webhooks.models import WebhookEvent

FAMILIES: dict[str, metrics.FamilySpec] = {
    "paydesk_webhook_backlog": ("gauge", "Webhook events waiting for a worker, by provider.", ["provider"]),
    "paydesk_webhook_lag_seconds": (
        "gauge",
        "Age of the oldest webhook event waiting for a worker, by provider (0 when none).",
        ["provider"],
    ),
    "paydesk_webhook_events_dead": (
        "gauge",
        "Webhook events whose retries ran out, by provider.",
        ["provider"],
    ),
}


def webhook_samples() -> list[Sample]:
    samples: list[Sample] = []
    waiting = (
        WebhookEvent.objects.filter(status__in=["received", "failed"])
        .order_by()
        .values("provider")
        .annotate(n=Count("pk"), oldest=Min("received_at"))
    )
    for row in waiting:
        samples.append(("paydesk_webhook_backlog", {"provider": row["provider"]}, row["n"]))
        samples.append(
            ("paydesk_webhook_lag_seconds", {"provider": row["provider"]}, metrics.age_seconds(row["oldest"]))
        )
    dead = WebhookEvent.objects.filter(status="dead").order_by().values("provider").annotate(n=Count("pk"))
    samples.extend(("paydesk_webhook_events_dead", {"provider": row["provider"]}, row["n"]) for row in dead)
    return samples


def connect() -> None:
    metrics.register_state_collector(webhook_samples, families=FAMILIES)
