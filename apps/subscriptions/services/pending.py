"""Pending changes: what PATCH records for later, when it applies, and how it is shown.

Amount, cycle and plan wait for the next period; a new payment method for the next charge attempt
(a dunning retry included). Billing applies them just before it charges (`apply_pending`).
"""

from __future__ import annotations

from typing import Any

from apps.payments.services import parse_payment_method
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import period_start
from apps.subscriptions.selectors import subscription_period_charged


def pending_applies(subscription: Subscription) -> bool:
    """Pending changes that the next charge attempt must use (see `subscription_update`)."""
    if subscription.pending_payment_method:
        return True
    return subscription.dunning_attempt == 0 and subscription.has_pending_update


def apply_pending(subscription: Subscription) -> list[str]:
    """Moves the pending changes the next charge attempt uses into the terms; returns their names.

    Unsaved: the caller holds the lock and saves (`TERMS_FIELDS`, `PENDING_FIELDS`, `BILLING_FIELDS`).
    """
    applied: list[str] = []
    if subscription.pending_payment_method:
        subscription.payment_method, subscription.pending_payment_method = (
            subscription.pending_payment_method,
            "",
        )
        applied.append("payment_method")
    if subscription.dunning_attempt or _attempt_already_charged(subscription):
        # The period under collection keeps the terms it was first charged on: a retry, or a
        # payment still in flight (in review, retrying) that a new cycle would otherwise stretch.
        return applied
    if subscription.pending_amount is not None:
        subscription.amount, subscription.pending_amount = subscription.pending_amount, None
        applied.append("amount")
    if subscription.pending_plan_id:
        subscription.plan_id, subscription.pending_plan_id = subscription.pending_plan_id, ""
        applied.append("plan_id")
    if subscription.pending_billing_cycle:
        # The new cycle counts from the start of the period now due: re-anchor there.
        subscription.billing_anchor = period_start(
            anchor=subscription.billing_anchor,
            cycle=subscription.billing_cycle,
            index=subscription.next_period_index,
        )
        subscription.next_period_index = 0
        subscription.billing_cycle, subscription.pending_billing_cycle = (
            subscription.pending_billing_cycle,
            "",
        )
        applied.append("billing_cycle")
    return applied


def _attempt_already_charged(subscription: Subscription) -> bool:
    start = period_start(
        anchor=subscription.billing_anchor,
        cycle=subscription.billing_cycle,
        index=subscription.next_period_index,
    )
    return subscription_period_charged(subscription=subscription, period_start=start)


def pending_view(subscription: Subscription) -> dict[str, Any] | None:
    """Pending changes as events, audit rows and the API show them (a new payment method only by type)."""
    pending: dict[str, Any] = {}
    if subscription.pending_amount is not None:
        pending["amount"] = subscription.pending_amount
    if subscription.pending_billing_cycle:
        pending["billing_cycle"] = subscription.pending_billing_cycle
    if subscription.pending_plan_id:
        pending["plan_id"] = subscription.pending_plan_id
    if subscription.pending_payment_method:
        pending["payment_method_type"] = parse_payment_method(subscription.pending_payment_method).type
    return pending or None
