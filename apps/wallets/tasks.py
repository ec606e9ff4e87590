"""Celery entry points for wallets: each loads by id and calls one service."""

from datetime import timedelta

from celery import shared_task

from apps.wallets import deposits


@shared_task(acks_late=True, ignore_result=True)
def retry_deposit(transaction_id: str) -> str:
    """One more attempt at a pending deposit's charge (scheduled with backoff + full jitter)."""
    return deposits.deposit_run(actor=None, transaction_id=transaction_id).status


@shared_task(acks_late=True, ignore_result=True)
def reconcile_deposits() -> int:
    """The periodic form of `manage.py reconcile_deposits`: settles the deposits nobody is coming back for."""
    return deposits.reconcile_deposits(older_than=timedelta(0)).settled
