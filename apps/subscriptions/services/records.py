"""What terms and billing both write: which fields each kind of write saves, one charge attempt,
how a subscription ends, and what events and audit rows say about a subscription."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from apps.accounts.models import User
from apps.core.timestamps import iso_z
from apps.payments.models import Payment
from apps.payments.services import parse_payment_method
from apps.subscriptions.models import Subscription
from apps.subscriptions.services.pending import pending_view

St = Subscription.Status

# What each kind of write changes (`save(update_fields=...)`): the terms, the pending changes, and
# the billing state the engine moves.
TERMS_FIELDS = ["amount", "billing_cycle", "plan_id", "payment_method", "billing_anchor"]
PENDING_FIELDS = ["pending_amount", "pending_billing_cycle", "pending_plan_id", "pending_payment_method"]
BILLING_FIELDS = [
    "status",
    "next_period_index",
    "current_period_start",
    "current_period_end",
    "due_at",
    "dunning_attempt",
    "cancel_at_period_end",
    "canceled_at",
    "latest_payment_id",
    "billing_claimed_until",
    "updated_at",
]


@dataclass(frozen=True)
class ChargePlan:
    """One charge attempt: which period, which attempt, on what terms."""

    subscription_id: str
    owner: User
    anchor: datetime
    cycle: str
    index: int
    attempt: int
    period_start: datetime
    period_end: datetime
    amount: int
    currency: str
    payment_method: str
    plan_id: str

    @property
    def billing_period(self) -> str:
        """The payment's unique key within the subscription: one payment per period and attempt."""
        key = self.period_start.isoformat()
        return key if self.attempt == 0 else f"{key}#retry{self.attempt}"


def mark_canceled(subscription: Subscription, *, at: datetime) -> None:
    """Ends the subscription at `at`: no further charge. Saves; the caller holds its lock."""
    subscription.status = St.CANCELED
    subscription.canceled_at = at
    subscription.cancel_at_period_end = False
    subscription.due_at = None
    subscription.billing_claimed_until = None
    subscription.save(update_fields=BILLING_FIELDS)


def billing_lease() -> timedelta:
    """How long a claimed subscription is left to the pass that claimed it."""
    return timedelta(seconds=settings.SUBSCRIPTION_BILLING_LEASE_SECONDS)


def audit_view(subscription: Subscription) -> dict[str, Any]:
    """The subscription as audit rows show it, before and after a change (never the token)."""
    return {
        "status": subscription.status,
        "plan_id": subscription.plan_id,
        "amount": subscription.amount,
        "currency": subscription.currency,
        "billing_cycle": subscription.billing_cycle,
        "payment_method_type": parse_payment_method(subscription.payment_method).type,
        "current_period_start": iso_z(subscription.current_period_start),
        "current_period_end": iso_z(subscription.current_period_end),
        "due_at": iso_z(subscription.due_at),
        "dunning_attempt": subscription.dunning_attempt,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": iso_z(subscription.canceled_at),
        "pending": pending_view(subscription),
    }


def subscription_payload(
    subscription: Subscription,
    *,
    plan: ChargePlan | None = None,
    payment: Payment | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What events say about a subscription: ids, money and the period concerned, never the token.

    With a charge attempt (`plan`) the period and payment are the attempt's (no payment when a
    wallet refused before one was made); otherwise the current period and the latest payment.
    """
    start = plan.period_start if plan else subscription.current_period_start
    end = plan.period_end if plan else subscription.current_period_end
    return {
        "subscription": subscription.pk,
        "owner": subscription.owner_id,
        "plan_id": plan.plan_id if plan else subscription.plan_id,
        "status": subscription.status,
        "amount": plan.amount if plan else subscription.amount,
        "currency": subscription.currency,
        "billing_cycle": subscription.billing_cycle,
        "period_start": iso_z(start),
        "period_end": iso_z(end),
        "payment": (payment.pk if payment else None) if plan else (subscription.latest_payment_id or None),
        "next_billing_date": iso_z(subscription.next_billing_date),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "pending_update": pending_view(subscription),
        **extra,
    }
