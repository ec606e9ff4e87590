"""The billing engine: charges due subscriptions period by period, with dunning on failure.

Billing one period is three steps, so no row lock is held while a gateway is called:

    1. claim  (short transaction): `SELECT … FOR UPDATE SKIP LOCKED` a batch of due subscriptions
              and lease them (`billing_claimed_until`), so concurrent passes take disjoint batches
    2. charge (no transaction of ours): `payment_create` with the subscription's id and a billing
              period key (the period's start, plus `#retryN` for dunning retries). The database
              holds one payment per (subscription, key): whatever charges the same attempt twice -
              a pass re-running after a crash, a lease that ran out mid-charge - gets the first
              payment back, and the gateway call behind it is made once.
    3. settle (transaction): lock the subscription and check it still waits for the period and
              attempt just charged (otherwise someone settled it first: nothing to do); then
              advance the period, or count the failure and schedule the next dunning retry or
              the final status - with the audit row and outbox events, all or nothing.

A retry for period N only starts after the failed payment of the previous attempt was settled, so
at most one payment per period ever succeeds. Every function takes `now` instead of reading the
clock, so tests and `manage.py bill_subscriptions --as-of` step through time.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeGuard

from django.conf import settings
from django.db import transaction

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError
from apps.core.outbox import emit_event
from apps.core.timestamps import iso_z
from apps.payments.models import Payment
from apps.payments.services import payment_create, payment_refund
from apps.subscriptions.locks import lock_due_subscription_ids, lock_subscription
from apps.subscriptions.models import BILLABLE_STATUSES, Subscription
from apps.subscriptions.periods import period_bounds
from apps.subscriptions.selectors import subscription_for_billing, subscription_payment_get
from apps.subscriptions.services.pending import apply_pending, pending_applies
from apps.subscriptions.services.records import (
    BILLING_FIELDS,
    PENDING_FIELDS,
    TERMS_FIELDS,
    ChargePlan,
    audit_view,
    billing_lease,
    mark_canceled,
    subscription_payload,
)

logger = logging.getLogger(__name__)

St = Subscription.Status
_PAID = (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED)
_NOT_PAID = (Payment.Status.FAILED, Payment.Status.CANCELED)


class Outcome(StrEnum):
    CHARGED = "charged"
    FAILED = "failed"
    ENDED = "ended"  # reached the end of the period it was to be canceled at
    PENDING = "pending"  # the payment is still in flight (retrying, in review, reconcile)
    SKIPPED = "skipped"  # nothing to do any more: settled by someone else, no longer due
    ERROR = "error"  # unexpected; logged, and retried after the lease runs out


@dataclass
class BillingSummary:
    outcomes: Counter[Outcome] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        self.outcomes[outcome] += 1

    def as_dict(self) -> dict[str, int]:
        return {outcome.value: self.outcomes[outcome] for outcome in Outcome}


def subscriptions_bill_due(
    *,
    now: datetime,
    batch_size: int | None = None,
    on_progress: Callable[[str, Outcome], None] | None = None,
) -> BillingSummary:
    """One billing pass as if at `now`: claims due subscriptions in batches until none is left.

    Any number of passes may run at once (Celery workers, the command): SKIP LOCKED and the lease
    give each a disjoint share. A subscription several periods behind is charged period by
    period in the same pass (each period is owed once); a failed one is not due again before its
    next retry, and one whose payment is still in flight keeps its lease, so a pass ends.
    """
    summary = BillingSummary()
    size = batch_size or settings.SUBSCRIPTION_BILLING_BATCH_SIZE
    while ids := _claim_due(now=now, limit=size):
        for subscription_id in ids:
            outcome = subscription_bill(subscription_id=subscription_id, now=now)
            summary.add(outcome)
            if on_progress is not None:
                on_progress(subscription_id, outcome)
    return summary


@transaction.atomic(durable=True)
def _claim_due(*, now: datetime, limit: int) -> list[str]:
    ids = lock_due_subscription_ids(now=now, limit=limit)
    if ids:
        Subscription.objects.filter(pk__in=ids).update(billing_claimed_until=now + billing_lease())
    return ids


def subscription_bill(*, subscription_id: str, now: datetime) -> Outcome:
    """Charges the period (or dunning retry) a claimed subscription is due for, and settles it.

    One subscription that can't be billed (a row it can't decrypt, a database error) is logged and
    left to its lease running out; it never stops the pass billing everyone else.
    """
    try:
        return _bill(subscription_id=subscription_id, now=now)
    except Exception:
        logger.exception("subscription %s: billing failed; retried once its claim expires", subscription_id)
        return Outcome.ERROR


def _bill(*, subscription_id: str, now: datetime) -> Outcome:
    plan = _billing_begin(subscription_id=subscription_id, now=now)
    if isinstance(plan, Outcome):
        return plan
    try:
        payment = payment_create(
            actor=None,
            owner=plan.owner,
            amount=plan.amount,
            currency=plan.currency,
            payment_method=plan.payment_method,
            description=f"{plan.plan_id} {plan.period_start:%Y-%m-%d} to {plan.period_end:%Y-%m-%d}"[:500],
            metadata={
                "plan_id": plan.plan_id,
                "period_start": iso_z(plan.period_start),
                "period_end": iso_z(plan.period_end),
            },
            subscription_id=plan.subscription_id,
            billing_period=plan.billing_period,
        )
    except ApplicationError as exc:
        # The wallet can't pay (insufficient funds, frozen, gone): nothing was written or charged.
        return _billing_settle(plan=plan, payment=None, failure_code=exc.code, now=now)
    if payment.status in _PAID or payment.status in _NOT_PAID:
        outcome = _billing_settle(plan=plan, payment=payment, failure_code=payment.failure_code, now=now)
        if outcome == Outcome.SKIPPED and payment.status == Payment.Status.SUCCEEDED:
            try:
                subscription_refund_late_charge(subscription_id=plan.subscription_id, payment_id=payment.pk)
            except ApplicationError:
                logger.exception("subscription %s: late charge %s not refunded", subscription_id, payment.pk)
        return outcome
    return Outcome.PENDING


def _billing_begin(*, subscription_id: str, now: datetime) -> ChargePlan | Outcome:
    # What to charge is decided on the primary: a lagging replica could show a period already paid.
    subscription = subscription_for_billing(subscription_id=subscription_id)
    if not _is_due(subscription, now):
        return Outcome.SKIPPED
    if subscription.cancel_at_period_end or pending_applies(subscription):
        prepared = _billing_prepare(subscription_id=subscription_id, now=now)
        if isinstance(prepared, Outcome):
            return prepared
        subscription = prepared
    start, end = period_bounds(
        anchor=subscription.billing_anchor,
        cycle=subscription.billing_cycle,
        index=subscription.next_period_index,
    )
    return ChargePlan(
        subscription_id=subscription.pk,
        owner=subscription.owner,
        anchor=subscription.billing_anchor,
        cycle=subscription.billing_cycle,
        index=subscription.next_period_index,
        attempt=subscription.dunning_attempt,
        period_start=start,
        period_end=end,
        amount=subscription.amount,
        currency=subscription.currency,
        payment_method=subscription.payment_method,
        plan_id=subscription.plan_id,
    )


@transaction.atomic(durable=True)
def _billing_prepare(*, subscription_id: str, now: datetime) -> Subscription | Outcome:
    """Ends a subscription that reached its cancel-at-period-end, or applies its pending changes."""
    subscription = lock_subscription(subscription_id)
    if not _is_due(subscription, now) or subscription.due_at is None:  # (due_at: narrowed for mypy)
        return Outcome.SKIPPED
    before = audit_view(subscription)
    if subscription.cancel_at_period_end:
        mark_canceled(subscription, at=min(now, subscription.due_at))
        emit_event(
            event_type="subscription.canceled",
            aggregate=subscription,
            payload=subscription_payload(subscription, reason="period_end"),
        )
        action = "subscription.end"
        outcome: Subscription | Outcome = Outcome.ENDED
    else:
        applied = apply_pending(subscription)
        if not applied:
            return subscription
        subscription.save(update_fields=[*TERMS_FIELDS, *PENDING_FIELDS, *BILLING_FIELDS])
        emit_event(
            event_type="subscription.updated",
            aggregate=subscription,
            payload=subscription_payload(subscription, applied=applied),
        )
        action = "subscription.apply_update"
        outcome = subscription
    audit_record(
        actor=None,
        action=action,
        entity_type="subscription",
        entity_id=subscription.pk,
        before=before,
        after=audit_view(subscription),
    )
    return outcome


@transaction.atomic(durable=True)
def _billing_settle(
    *, plan: ChargePlan, payment: Payment | None, failure_code: str, now: datetime
) -> Outcome:
    subscription = lock_subscription(plan.subscription_id)
    if not _still_collecting(subscription, plan):
        return Outcome.SKIPPED
    before = audit_view(subscription)
    subscription.billing_claimed_until = None
    if payment is not None:
        subscription.latest_payment_id = payment.pk
    if payment is not None and payment.status in _PAID:
        _renew(subscription, plan=plan, payment=payment)
        action, outcome = "subscription.renew", Outcome.CHARGED
    else:
        _fail(
            subscription, plan=plan, payment=payment, failure_code=failure_code or "payment_failed", now=now
        )
        action, outcome = "subscription.payment_failed", Outcome.FAILED
    audit_record(
        actor=None,
        action=action,
        entity_type="subscription",
        entity_id=subscription.pk,
        before=before,
        after={**audit_view(subscription), "payment": payment.pk if payment else None},
    )
    return outcome


def _renew(subscription: Subscription, *, plan: ChargePlan, payment: Payment) -> None:
    subscription.current_period_start, subscription.current_period_end = plan.period_start, plan.period_end
    subscription.next_period_index += 1
    subscription.status = St.ACTIVE
    subscription.dunning_attempt = 0
    subscription.due_at = plan.period_end
    subscription.save(update_fields=BILLING_FIELDS)
    emit_event(
        event_type="subscription.renewed",
        aggregate=subscription,
        payload=subscription_payload(subscription, plan=plan, payment=payment),
    )


def _fail(
    subscription: Subscription, *, plan: ChargePlan, payment: Payment | None, failure_code: str, now: datetime
) -> None:
    """Counts a failed attempt: the next dunning retry, or the final status after the last one."""
    schedule = settings.SUBSCRIPTION_DUNNING_DAYS
    subscription.dunning_attempt += 1
    attempt = subscription.dunning_attempt
    was_past_due = subscription.status == St.PAST_DUE
    if attempt <= len(schedule):
        subscription.status = St.PAST_DUE
        subscription.due_at = now + timedelta(days=schedule[attempt - 1])
        final_event = None if was_past_due else "subscription.past_due"
    elif settings.SUBSCRIPTION_FINAL_STATUS == St.CANCELED:
        mark_canceled(subscription, at=now)
        final_event = "subscription.canceled"
    else:
        subscription.status = St.UNPAID
        subscription.due_at = None
        final_event = "subscription.unpaid"
    subscription.save(update_fields=BILLING_FIELDS)
    details = {
        "failure_code": failure_code,
        "attempt": attempt,
        "attempts_left": max(len(schedule) + 1 - attempt, 0),
    }
    emit_event(
        event_type="subscription.payment_failed",
        aggregate=subscription,
        payload=subscription_payload(subscription, plan=plan, payment=payment, **details),
    )
    if final_event:
        reason = {"reason": "payment_failed"} if final_event == "subscription.canceled" else {}
        emit_event(
            event_type=final_event,
            aggregate=subscription,
            payload=subscription_payload(subscription, plan=plan, payment=payment, **details, **reason),
        )


def subscription_refund_late_charge(*, subscription_id: str, payment_id: str) -> bool:
    """Refunds a charge that succeeded for a period its subscription never entered. Returns whether.

    That happens when the subscription was canceled while the charge was in flight (a payment in
    review, retrying, in reconciliation): settling finds it canceled and leaves it so. Periods are
    settled in order, so a period that starts before `current_period_end` was settled (paid for
    and served) and is never refunded here, however late this runs.
    """
    subscription = subscription_for_billing(subscription_id=subscription_id)
    if subscription is None or subscription.status != St.CANCELED:
        return False
    payment = subscription_payment_get(subscription=subscription, payment_id=payment_id)
    if payment is None or payment.status != Payment.Status.SUCCEEDED:
        return False
    charged_from = datetime.fromisoformat(payment.billing_period.split("#")[0])
    paid_through = subscription.current_period_end
    if paid_through is not None and charged_from < paid_through:
        return False
    payment_refund(
        actor=None,
        owner=subscription.owner,
        payment_id=payment.pk,
        reason=f"subscription {subscription.pk} was canceled before this charge was settled",
    )
    logger.info("subscription %s: refunded late charge %s", subscription.pk, payment.pk)
    return True


def _is_due(subscription: Subscription | None, now: datetime) -> TypeGuard[Subscription]:
    return (
        subscription is not None
        and subscription.status in BILLABLE_STATUSES
        and subscription.due_at is not None
        and subscription.due_at <= now
    )


def _still_collecting(subscription: Subscription, plan: ChargePlan) -> bool:
    """Whether the subscription still waits for exactly the charge attempt `plan` made."""
    return (
        subscription.status in BILLABLE_STATUSES
        and subscription.billing_anchor == plan.anchor
        and subscription.billing_cycle == plan.cycle
        and subscription.next_period_index == plan.index
        and subscription.dunning_attempt == plan.attempt
    )
