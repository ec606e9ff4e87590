"""Celery entry points for subscription billing."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.subscriptions import services


@shared_task(acks_late=True, ignore_result=True)
def bill_subscriptions() -> int:
    """The beat task: starts SUBSCRIPTION_BILLING_PASSES billing passes for the workers to share.

    Each pass claims its own batches with SKIP LOCKED, so passes on several workers split the due
    subscriptions between them. A pass not started within one beat interval expires: the next
    beat starts fresh ones instead of a backlog piling up behind a slow gateway.
    """
    passes = settings.SUBSCRIPTION_BILLING_PASSES
    for _ in range(passes):
        bill_subscriptions_pass.apply_async(expires=settings.SUBSCRIPTION_BILLING_INTERVAL_SECONDS)
    return passes


@shared_task(acks_late=True, ignore_result=True)
def bill_subscriptions_pass() -> dict[str, int]:
    """One billing pass at the current time (`manage.py bill_subscriptions` without --as-of)."""
    return services.subscriptions_bill_due(now=timezone.now()).as_dict()
