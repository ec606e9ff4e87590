"""Outbox consumers of the subscriptions app."""

from __future__ import annotations

from django.db import transaction

from apps.core.models import OutboxEvent
from apps.core.outbox import consumer
from apps.subscriptions.selectors import subscription_is_canceled


@consumer("payment.succeeded", name="subscriptions.refund_late_charge")
def refund_late_charge(event: OutboxEvent) -> None:
    """A subscription charge that succeeds after its subscription was canceled (it was in review
    or retrying meanwhile) is given back by a task: the refund owns its own transaction, which
    can't run inside the consumer's."""
    from apps.subscriptions.tasks import refund_late_charge as task

    subscription_id = event.payload.get("subscription")
    payment_id = event.payload.get("payment")
    # Nearly every subscription charge is for a live subscription: no task for those.
    if subscription_id and payment_id and subscription_is_canceled(subscription_id=subscription_id):
        transaction.on_commit(lambda: task.delay(subscription_id, payment_id))
