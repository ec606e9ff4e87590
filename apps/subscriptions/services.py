"""Every write to subscriptions: create, update, cancel, and the billing engine that charges them.

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
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.errors import ApplicationError, InvalidRequest
from apps.core.outbox import emit_event
from apps.core.timestamps import iso_z
from apps.payments.models import Payment
from apps.payments.services import parse_payment_method, payment_create, payment_refund
from apps.subscriptions.errors import (
    NothingToUpdate,
    SubscriptionCanceled,
    SubscriptionUnpaid,
)
from apps.subscriptions.locks import lock_due_subscription_ids, lock_subscription
from apps.subscriptions.models import BILLABLE_STATUSES, Subscription
from apps.subscriptions.periods import CYCLES, period_bounds, period_start
from apps.subscriptions.selectors import (
    subscription_for_billing,
    subscription_get,
    subscription_payment_get,
    subscription_period_charged,
)
from apps.wallets.errors import CurrencyMismatch
from apps.wallets.selectors import wallet_get

logger = logging.getLogger(__name__)

St = Subscription.Status
MAX_TRIAL_DAYS = 730
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
    outcomes: Counter = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        self.outcomes[outcome] += 1

    def as_dict(self) -> dict[str, int]:
        return {outcome.value: self.outcomes[outcome] for outcome in Outcome}


@dataclass(frozen=True)
class ChargePlan:
    """One charge attempt: which period, which attempt, on what terms."""

    subscription_id: str
    owner: Any
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


# --- create, update, cancel ----------------------------------------------------------------------


def subscription_create(
    *,
    actor: Any,
    owner: Any,
    plan_id: str,
    amount: int,
    currency: str,
    billing_cycle: str,
    payment_method: str,
    trial_days: int = 0,
    metadata: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Subscription:
    """Starts a subscription: the first period is charged at once, or at the end of a trial.

    A first charge that is declined leaves the subscription `past_due` under the dunning schedule,
    exactly like a declined renewal.
    """
    now = _whole_second(now or timezone.now())
    if billing_cycle not in CYCLES:
        raise InvalidRequest(f"billing_cycle must be one of: {', '.join(CYCLES)}", param="billing_cycle")
    if not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise InvalidRequest(f"trial_days must be between 0 and {MAX_TRIAL_DAYS}", param="trial_days")
    _check_payment_method(owner=owner, payment_method=payment_method, currency=currency)
    subscription = _subscription_open(
        actor=actor,
        owner=owner,
        fields={
            "plan_id": plan_id,
            "amount": amount,
            "currency": currency,
            "billing_cycle": billing_cycle,
            "payment_method": payment_method,
            "metadata": metadata or {},
        },
        trial_days=trial_days,
        now=now,
    )
    if subscription.status == St.ACTIVE:
        subscription_bill(subscription_id=subscription.pk, now=now)
        subscription.refresh_from_db()
    return subscription


@transaction.atomic(durable=True)
def _subscription_open(
    *, actor: Any, owner: Any, fields: dict[str, Any], trial_days: int, now: datetime
) -> Subscription:
    trial_end = now + timedelta(days=trial_days) if trial_days else None
    subscription = Subscription.objects.create(
        owner=owner,
        **fields,
        status=St.TRIALING if trial_end else St.ACTIVE,
        billing_anchor=trial_end or now,
        current_period_start=now if trial_end else None,
        current_period_end=trial_end,
        trial_end_date=trial_end,
        due_at=trial_end or now,
        # Without a trial its creator charges the first period right away: leased to it.
        billing_claimed_until=None if trial_end else now + _lease(),
        created_at=now,
    )
    emit_event(
        event_type="subscription.created", aggregate=subscription, payload=subscription_payload(subscription)
    )
    audit_record(
        actor=actor,
        action="subscription.create",
        entity_type="subscription",
        entity_id=subscription.pk,
        after=_audit_view(subscription),
    )
    return subscription


def subscription_update(
    *,
    actor: Any,
    owner: Any,
    subscription_id: str,
    amount: int | None = None,
    billing_cycle: str | None = None,
    plan_id: str | None = None,
    payment_method: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Subscription:
    """Records changes for the next period; metadata changes at once.

    Amount, cycle and plan apply when the next period is charged. A new payment method applies to
    the next charge attempt - the next period, or the next dunning retry of a `past_due`
    subscription, which is why a customer whose card was declined updates it. Asking for the
    current value again withdraws a pending change.
    """
    changes = {
        "amount": amount,
        "billing_cycle": billing_cycle,
        "plan_id": plan_id,
        "payment_method": payment_method,
    }
    if all(value is None for value in changes.values()) and metadata is None:
        raise NothingToUpdate()
    if billing_cycle is not None and billing_cycle not in CYCLES:
        raise InvalidRequest(f"billing_cycle must be one of: {', '.join(CYCLES)}", param="billing_cycle")
    current = subscription_get(principal=owner, subscription_id=subscription_id)
    if payment_method is not None:
        _check_payment_method(owner=owner, payment_method=payment_method, currency=current.currency)
    return _subscription_update(
        actor=actor, owner=owner, subscription_id=subscription_id, changes=changes, metadata=metadata
    )


@transaction.atomic(durable=True)
def _subscription_update(
    *,
    actor: Any,
    owner: Any,
    subscription_id: str,
    changes: dict[str, Any],
    metadata: dict[str, Any] | None,
) -> Subscription:
    subscription = lock_subscription(subscription_id, owner=owner)
    if subscription.status == St.CANCELED:
        raise SubscriptionCanceled()
    if subscription.status == St.UNPAID:
        raise SubscriptionUnpaid()
    before = _audit_view(subscription)
    for name, value in changes.items():
        if value is None:
            continue
        unchanged = value == getattr(subscription, name)
        empty = None if name == "amount" else ""
        setattr(subscription, f"pending_{name}", empty if unchanged else value)
    if metadata is not None:
        # Stripe's rule: keys are merged, and a key set to "" is removed.
        merged = {**subscription.metadata, **metadata}
        subscription.metadata = {key: value for key, value in merged.items() if value != ""}
    subscription.save(update_fields=[*PENDING_FIELDS, "metadata", "updated_at"])
    emit_event(
        event_type="subscription.updated", aggregate=subscription, payload=subscription_payload(subscription)
    )
    audit_record(
        actor=actor,
        action="subscription.update",
        entity_type="subscription",
        entity_id=subscription.pk,
        before=before,
        after=_audit_view(subscription),
    )
    return subscription


@transaction.atomic(durable=True)
def subscription_cancel(
    *, actor: Any, owner: Any, subscription_id: str, at_period_end: bool = False, now: datetime | None = None
) -> Subscription:
    """Cancels now, or at the end of the paid period (`at_period_end`): no further charge either way.

    A `past_due` or `unpaid` subscription has no paid period left to run out, so it is canceled
    at once even when asked for at period end. Canceling a canceled subscription again is a no-op;
    scheduling its cancellation is a 409.
    """
    now = _whole_second(now or timezone.now())
    subscription = lock_subscription(subscription_id, owner=owner)
    if subscription.status == St.CANCELED:
        if at_period_end:
            raise SubscriptionCanceled("This subscription is already canceled.")
        return subscription
    before = _audit_view(subscription)
    if at_period_end and subscription.status in (St.TRIALING, St.ACTIVE):
        if subscription.cancel_at_period_end:
            return subscription
        subscription.cancel_at_period_end = True
        subscription.save(update_fields=["cancel_at_period_end", "updated_at"])
        emit_event(
            event_type="subscription.updated",
            aggregate=subscription,
            payload=subscription_payload(subscription),
        )
        action = "subscription.cancel_at_period_end"
    else:
        _end(subscription, at=now)
        emit_event(
            event_type="subscription.canceled",
            aggregate=subscription,
            payload=subscription_payload(subscription, reason="requested"),
        )
        action = "subscription.cancel"
    audit_record(
        actor=actor,
        action=action,
        entity_type="subscription",
        entity_id=subscription.pk,
        before=before,
        after=_audit_view(subscription),
    )
    return subscription


def _check_payment_method(*, owner: Any, payment_method: str, currency: str) -> None:
    """A token or the owner's own wallet in the subscription's currency; refused up front."""
    method = parse_payment_method(payment_method)
    if method.wallet_id:
        wallet = wallet_get(user=owner, wallet_id=method.wallet_id, param="payment_method")
        if wallet.currency != currency:
            raise CurrencyMismatch(
                f"This wallet holds {wallet.currency}, not {currency}.", param="payment_method"
            )


# --- the billing engine --------------------------------------------------------------------------


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
        Subscription.objects.filter(pk__in=ids).update(billing_claimed_until=now + _lease())
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
    if subscription.cancel_at_period_end or _pending_applies(subscription):
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
    if not _is_due(subscription, now):
        return Outcome.SKIPPED
    before = _audit_view(subscription)
    if subscription.cancel_at_period_end:
        _end(subscription, at=min(now, subscription.due_at))
        emit_event(
            event_type="subscription.canceled",
            aggregate=subscription,
            payload=subscription_payload(subscription, reason="period_end"),
        )
        action = "subscription.end"
        outcome: Subscription | Outcome = Outcome.ENDED
    else:
        applied = _apply_pending(subscription)
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
        after=_audit_view(subscription),
    )
    return outcome


def _pending_applies(subscription: Subscription) -> bool:
    """Pending changes that the next charge attempt must use (see `subscription_update`)."""
    if subscription.pending_payment_method:
        return True
    return subscription.dunning_attempt == 0 and subscription.has_pending_update


def _apply_pending(subscription: Subscription) -> list[str]:
    applied = []
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


@transaction.atomic(durable=True)
def _billing_settle(
    *, plan: ChargePlan, payment: Payment | None, failure_code: str, now: datetime
) -> Outcome:
    subscription = lock_subscription(plan.subscription_id)
    if not _still_collecting(subscription, plan):
        return Outcome.SKIPPED
    before = _audit_view(subscription)
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
        after={**_audit_view(subscription), "payment": payment.pk if payment else None},
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
        _end(subscription, at=now)
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


# --- shared steps --------------------------------------------------------------------------------


def _is_due(subscription: Subscription | None, now: datetime) -> bool:
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


def _end(subscription: Subscription, *, at: datetime) -> None:
    subscription.status = St.CANCELED
    subscription.canceled_at = at
    subscription.cancel_at_period_end = False
    subscription.due_at = None
    subscription.billing_claimed_until = None
    subscription.save(update_fields=BILLING_FIELDS)


def _lease() -> timedelta:
    return timedelta(seconds=settings.SUBSCRIPTION_BILLING_LEASE_SECONDS)


def _whole_second(moment: datetime) -> datetime:
    # Period keys are ISO timestamps in a 40-character column: no microseconds.
    return moment.replace(microsecond=0)


def _audit_view(subscription: Subscription) -> dict[str, Any]:
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
        "pending": _pending_view(subscription),
    }


def _pending_view(subscription: Subscription) -> dict[str, Any] | None:
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
        "pending_update": _pending_view(subscription),
        **extra,
    }
