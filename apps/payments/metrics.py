"""Payments' metrics, registered with core's (`apps.core.metrics`) from `PaymentsConfig.ready()`.

- At scrape time: payments by status and gateway, and the review queue (size, oldest age).
- A review decision's latency (held → decided), observed once the decision commits.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Count, Min
from django.db.models.signals import post_save

from apps.core import metrics
from apps.core.metrics import Sample
from apps.payments.models import Payment, Review

FAMILIES: dict[str, metrics.FamilySpec] = {
    "paydesk_payments": ("gauge", "Payments by status and gateway.", ["status", "gateway"]),
    "paydesk_review_queue_size": ("gauge", "Payments held for review, not yet decided.", []),
    "paydesk_review_queue_oldest_age_seconds": (
        "gauge",
        "Age of the oldest undecided review (0 when the queue is empty).",
        [],
    ),
}


def payment_samples() -> list[Sample]:
    rows = Payment.objects.order_by().values("status", "gateway").annotate(n=Count("pk"))
    samples: list[Sample] = [
        ("paydesk_payments", {"status": row["status"], "gateway": row["gateway"] or "none"}, row["n"])
        for row in rows
    ]
    queue = Review.objects.filter(status="open").aggregate(n=Count("pk"), oldest=Min("opened_at"))
    samples.append(("paydesk_review_queue_size", {}, queue["n"]))
    samples.append(("paydesk_review_queue_oldest_age_seconds", {}, metrics.age_seconds(queue["oldest"])))
    return samples


def review_decided(review: Review) -> None:
    """Observes `review`'s decision latency when the current transaction commits (a rolled-back
    decision is never observed). The call a review service makes right after saving a decision."""
    if review.decided_at is None:
        raise ValueError(f"review {review.pk} has no decision to observe")
    decision = review.status
    seconds = max((review.decided_at - review.opened_at).total_seconds(), 0.0)
    transaction.on_commit(lambda: metrics.observe_review_decision(decision=decision, seconds=seconds))


def _review_saved(sender: Any, instance: Review, update_fields: Any = None, **kwargs: Any) -> None:
    # `review_decide` saves the decision with update_fields naming decided_at, once per review.
    if not update_fields or "decided_at" not in update_fields or instance.decided_at is None:
        return
    review_decided(instance)


def connect() -> None:
    """Registers the scrape-time collector and the review-decision receiver (from ready())."""
    metrics.register_state_collector(payment_samples, families=FAMILIES)
    post_save.connect(_review_saved, sender=Review, dispatch_uid="metrics-review-decision")
