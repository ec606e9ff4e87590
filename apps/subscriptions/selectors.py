"""Reads of subscriptions, scoped to their owner: another user's subscription is a 404."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from apps.accounts.models import User
from apps.core.db_routing import primary
from apps.core.errors import InvalidRequest
from apps.core.ids import has_prefix
from apps.payments.models import Payment
from apps.payments.selectors import payment_list
from apps.subscriptions.errors import SubscriptionNotFound
from apps.subscriptions.models import BILLABLE_STATUSES, Subscription


def parse_subscription_filters(query_params: Mapping[str, Any]) -> dict[str, str]:
    filters: dict[str, str] = {}
    status = query_params.get("status")
    if status not in (None, ""):
        if status not in Subscription.Status.values:
            raise InvalidRequest(
                f"status must be one of: {', '.join(Subscription.Status.values)}", param="status"
            )
        filters["status"] = status
    return filters


def subscription_list(*, principal: User, filters: dict[str, str] | None = None) -> QuerySet[Subscription]:
    """The principal's subscriptions (for `apps.core.pagination`, which orders them newest first)."""
    queryset = Subscription.objects.filter(owner=principal)
    if filters and "status" in filters:
        queryset = queryset.filter(status=filters["status"])
    return queryset


def subscription_get(*, principal: User, subscription_id: str) -> Subscription:
    if not has_prefix(subscription_id, "sub"):
        raise SubscriptionNotFound(f"No such subscription: '{str(subscription_id)[:64]}'")
    subscription = Subscription.objects.filter(owner=principal, pk=subscription_id).first()
    if subscription is None:
        raise SubscriptionNotFound(f"No such subscription: '{subscription_id}'")
    return subscription


def subscription_is_canceled(*, subscription_id: str) -> bool:
    return Subscription.objects.filter(pk=subscription_id, status=Subscription.Status.CANCELED).exists()


def subscriptions_due(*, now: datetime) -> QuerySet[Subscription]:
    """What a billing pass at `now` would take: due, billable and not leased to another worker."""
    return Subscription.objects.filter(status__in=BILLABLE_STATUSES, due_at__lte=now).filter(
        Q(billing_claimed_until__isnull=True) | Q(billing_claimed_until__lte=now)
    )


def subscription_payments(*, subscription: Subscription) -> QuerySet[Payment]:
    """Every payment made for the subscription, newest first (as its owner sees them)."""
    return payment_list(principal=subscription.owner, filters={"subscription": subscription.pk}).order_by(
        "-created_at", "-id"
    )


def subscription_for_billing(*, subscription_id: str) -> Subscription | None:
    """The subscription with its owner, read on the primary: what billing decides to charge (or
    refund) must not come from a lagging replica, which could show a period as not yet paid."""
    with primary():
        return Subscription.objects.select_related("owner").filter(pk=subscription_id).first()


def subscription_period_charged(*, subscription: Subscription, period_start: datetime) -> bool:
    """Whether the first charge attempt for the period starting at `period_start` was made."""
    return (
        subscription_payments(subscription=subscription)
        .filter(billing_period=period_start.isoformat())
        .exists()
    )


def subscription_payment_get(*, subscription: Subscription, payment_id: str) -> Payment | None:
    """One payment made for the subscription, read on the primary (None if it isn't one of them)."""
    with primary():
        return subscription_payments(subscription=subscription).filter(pk=payment_id).first()
