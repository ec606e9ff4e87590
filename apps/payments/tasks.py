"""Celery entry points for payments: each loads by id and calls one service."""

from celery import shared_task

from apps.payments import selectors, services


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
    from datetime import timedelta

    for payment_id in selectors.payments_stuck(older_than=timedelta(0)):
        services.payment_mark_reconcile(actor=None, payment_id=payment_id, reason="stuck")
    settled = 0
    for payment_id in selectors.payments_to_reconcile(older_than=timedelta(0)):
        services.payment_reconcile(actor=None, payment_id=payment_id)
        settled += 1
    for refund_id in selectors.refunds_stuck(older_than=timedelta(0)):
        services.run_refund(actor=None, refund_id=refund_id)
        settled += 1
    return settled
