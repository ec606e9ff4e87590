"""Reads of payments, scoped to who asks: owners see their own, reviewers see all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.accounts.selectors import user_has_permission
from apps.core.errors import InvalidRequest
from apps.payments.errors import PaymentNotFound
from apps.payments.models import Payment, Refund

# Reviewers decide reviews and see every payment.
REVIEW_PERMISSION = "payments.review_payment"
FILTERS = ("status", "customer_id", "created_gte", "created_lt", "subscription")


def can_see_all_payments(user: Any) -> bool:
    return user_has_permission(user, REVIEW_PERMISSION)


def _visible(principal: Any) -> QuerySet[Payment]:
    queryset = Payment.objects.select_related("review", "review__decided_by")
    return queryset if can_see_all_payments(principal) else queryset.filter(owner=principal)


def _timestamp(name: str, value: str) -> datetime:
    """The instant, in UTC: PostgreSQL takes offsets up to ±15:59 only, ISO 8601 up to ±23:59."""
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # a 13th month; an instant before year 1 in UTC
        pass
    raise InvalidRequest(f"{name} must be an ISO 8601 timestamp with a timezone", param=name)


def parse_payment_filters(query_params: Any) -> dict[str, str]:
    """Validated filters, in a canonical form (also the list cache's key)."""
    filters = {name: query_params[name] for name in FILTERS if query_params.get(name) not in (None, "")}
    if "status" in filters and filters["status"] not in Payment.Status.values:
        raise InvalidRequest(f"status must be one of: {', '.join(Payment.Status.values)}", param="status")
    for name in ("created_gte", "created_lt"):
        if name in filters:
            filters[name] = _timestamp(name, filters[name]).isoformat()
    return filters


def payment_list(*, principal: Any, filters: dict[str, str]) -> QuerySet[Payment]:
    queryset = _visible(principal)
    if "status" in filters:
        queryset = queryset.filter(status=filters["status"])
    if "customer_id" in filters:
        queryset = queryset.filter(customer_id=filters["customer_id"])
    if "subscription" in filters:
        queryset = queryset.filter(subscription_id=filters["subscription"])
    if "created_gte" in filters:
        queryset = queryset.filter(created_at__gte=filters["created_gte"])
    if "created_lt" in filters:
        queryset = queryset.filter(created_at__lt=filters["created_lt"])
    return queryset


def payment_get(*, principal: Any, payment_id: str) -> Payment:
    payment = _visible(principal).filter(pk=payment_id).first()
    if payment is None:
        raise PaymentNotFound(f"No such payment: '{payment_id}'")
    return payment


# --- work nobody is coming back for (reconciliation) ----------------------------------------------


def payments_stuck(*, older_than: timedelta) -> list[str]:
    """Payments left `pending`/`processing` with no step under way and no retry to come.

    A step in a request takes seconds; a retry is due at `next_attempt_at`. Past either by the
    grace period (PAYMENT_STUCK_AFTER_SECONDS, and at least `older_than`), nobody is coming back for
    the payment (a crashed process, a retry lost with the broker), so it goes to reconciliation.
    """
    now = timezone.now()
    cutoff = now - max(older_than, timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS))
    no_retry_due = Q(next_attempt_at__isnull=True, updated_at__lte=cutoff) | Q(next_attempt_at__lte=cutoff)
    return list(
        Payment.objects.filter(
            no_retry_due, status__in=[Payment.Status.PENDING, Payment.Status.PROCESSING]
        ).values_list("pk", flat=True)
    )


def refunds_stuck(*, older_than: timedelta) -> list[str]:
    """Refunds still pending past the grace period: their retry was lost (a broker outage, a crash).

    Running them again is safe: a refund's gateway call carries the refund's id as its key.
    """
    cutoff = timezone.now() - max(older_than, timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS))
    return list(
        Refund.objects.filter(status=Refund.Status.PENDING, updated_at__lte=cutoff).values_list(
            "pk", flat=True
        )
    )


def payments_to_reconcile(*, older_than: timedelta) -> list[str]:
    return list(
        Payment.objects.filter(status=Payment.Status.RECONCILE, updated_at__lte=timezone.now() - older_than)
        .order_by("updated_at")
        .values_list("pk", flat=True)
    )
