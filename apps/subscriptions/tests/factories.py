"""Helpers for subscription tests: moments in UTC and what a subscription was charged."""

from datetime import UTC, datetime

from apps.core.models import OutboxEvent
from apps.payments.models import Payment


def at(text: str) -> datetime:
    """`at("2026-01-31 12:00")`: an aware UTC moment."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def payments_of(subscription_id: str) -> list[Payment]:
    """The subscription's payments, oldest first."""
    return list(Payment.objects.filter(subscription_id=subscription_id).order_by("created_at", "id"))


def events_of(subscription_id: str) -> list[str]:
    """The subscription's outbox event types, in the order they were written."""
    return list(
        OutboxEvent.objects.filter(aggregate_type="subscription", aggregate_id=subscription_id)
        .order_by("created_at", "id")
        .values_list("event_type", flat=True)
    )
