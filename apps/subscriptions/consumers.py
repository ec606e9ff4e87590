"""Outbox consumers of the subscriptions app."""

from __future__ import annotations

from apps.core.models import OutboxEvent
from apps.core.outbox import consumer
from apps.subscriptions.selectors import subscription_is_canceled


@consumer("payment.succeeded", name="subscriptions.refund_late_charge", owns_transactions=True)
def refund_late_charge(event: OutboxEvent) -> None:
    """A subscription charge that succeeds after its subscription was canceled (it was in review
    or retrying meanwhile) is given back.

    The refund is a payment step with a durable transaction of its own, so this consumer owns its
    transactions: it is recorded as consumed only after the refund committed, and a redelivery
    (a crash in between, a racing worker) finds the payment refunded and does nothing. A gateway
    that is down leaves the refund to the payments' own retries.
    """
    from apps.subscriptions.services import subscription_refund_late_charge

    subscription_id = event.payload.get("subscription")
    payment_id = event.payload.get("payment")
    # Nearly every subscription charge is for a live subscription: nothing to do for those.
    if subscription_id and payment_id and subscription_is_canceled(subscription_id=subscription_id):
        subscription_refund_late_charge(subscription_id=subscription_id, payment_id=payment_id)
