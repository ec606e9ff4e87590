"""Celery entry points for payments: each loads by id and calls one service."""

from datetime import timedelta

from celery import shared_task

from apps.payments import services


@shared_task(acks_late=True, ignore_result=True)
def run_payment_step(payment_id: str) -> str:
    """The gateway step of a payment accepted with `Prefer: respond-async` (queued by the consumer of
    its `payment.processing_requested` event): the same step the synchronous path runs in the request.

    Acknowledged only once done: a worker that dies mid-step leaves the task to the next one, which
    runs the step again with the same idempotency key (the payment's id), so the card is charged once."""
    return services.run_pending_operation(actor=None, payment_id=payment_id).status


@shared_task(acks_late=True, ignore_result=True)
def retry_payment_operation(payment_id: str) -> str:
    """One more attempt at a payment's pending gateway step (scheduled with backoff + jitter)."""
    return services.run_pending_operation(actor=None, payment_id=payment_id).status


@shared_task(acks_late=True, ignore_result=True)
def retry_refund(refund_id: str) -> str:
    return services.run_refund(actor=None, refund_id=refund_id).status


@shared_task(acks_late=True, ignore_result=True)
def reconcile_payments() -> int:
    """The periodic form of `manage.py reconcile_payments`: settles what is in `reconcile` or stuck."""
    return services.payments_reconcile_due(older_than=timedelta(0)).settled
