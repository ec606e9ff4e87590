"""A subscription's terms: start it (charged at once, or after a trial), change it from the next
period, cancel it now or at the end of the paid period.

Each write checks, changes the row (locked, once it exists), and records its outbox event and
audit row in one durable transaction. Starting one without a trial charges its first period right away, through the
billing engine (`apps.subscriptions.services.billing`), after the subscription is committed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.errors import InvalidRequest
from apps.core.outbox import emit_event
from apps.gateways.payment_methods import payment_method_require_known
from apps.payments.services import parse_payment_method
from apps.subscriptions.errors import NothingToUpdate, SubscriptionCanceled, SubscriptionUnpaid
from apps.subscriptions.locks import lock_subscription
from apps.subscriptions.models import Subscription
from apps.subscriptions.periods import CYCLES
from apps.subscriptions.selectors import subscription_get
from apps.subscriptions.services.billing import subscription_bill
from apps.subscriptions.services.records import (
    PENDING_FIELDS,
    audit_view,
    billing_lease,
    mark_canceled,
    subscription_payload,
)
from apps.wallets.errors import CurrencyMismatch
from apps.wallets.selectors import wallet_get

St = Subscription.Status
MAX_TRIAL_DAYS = 730


def subscription_create(
    *,
    actor: Actor,
    owner: User,
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
    *, actor: Actor, owner: User, fields: dict[str, Any], trial_days: int, now: datetime
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
        billing_claimed_until=None if trial_end else now + billing_lease(),
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
        after=audit_view(subscription),
    )
    return subscription


def subscription_update(
    *,
    actor: Actor,
    owner: User,
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
    actor: Actor,
    owner: User,
    subscription_id: str,
    changes: dict[str, Any],
    metadata: dict[str, Any] | None,
) -> Subscription:
    subscription = lock_subscription(subscription_id, owner=owner)
    if subscription.status == St.CANCELED:
        raise SubscriptionCanceled()
    if subscription.status == St.UNPAID:
        raise SubscriptionUnpaid()
    before = audit_view(subscription)
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
        after=audit_view(subscription),
    )
    return subscription


@transaction.atomic(durable=True)
def subscription_cancel(
    *,
    actor: Actor,
    owner: User,
    subscription_id: str,
    at_period_end: bool = False,
    now: datetime | None = None,
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
    before = audit_view(subscription)
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
        mark_canceled(subscription, at=now)
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
        after=audit_view(subscription),
    )
    return subscription


def _check_payment_method(*, owner: User, payment_method: str, currency: str) -> None:
    """A token the gateway knows or the owner's own wallet in the subscription's currency; refused
    up front, before anything is written."""
    method = parse_payment_method(payment_method)
    if method.token:
        payment_method_require_known(token=method.token)
    if method.wallet_id:
        wallet = wallet_get(user=owner, wallet_id=method.wallet_id, param="payment_method")
        if wallet.currency != currency:
            raise CurrencyMismatch(
                f"This wallet holds {wallet.currency}, not {currency}.", param="payment_method"
            )


def _whole_second(moment: datetime) -> datetime:
    # Period keys are ISO timestamps in a 40-character column: no microseconds.
    return moment.replace(microsecond=0)
