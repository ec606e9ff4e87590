"""Celery entry points for payouts: each loads by id and calls one service."""

from celery import shared_task

from apps.payouts import services


@shared_task(acks_late=True, ignore_result=True)
def send_payout(payout_id: str) -> str:
    """Sends a payout to its gateway and settles the answer (queued once its `payout.created` event is
    delivered, or a reviewer approved it). Run twice, it is one payout: the key is the payout's id."""
    return services.payout_send(actor=None, payout_id=payout_id).status


@shared_task(acks_late=True, ignore_result=True)
def sweep_payouts() -> int:
    """The periodic pass (beat): sends the payouts whose retry is due or that were left behind."""
    return services.payouts_sweep()


@shared_task(acks_late=True, ignore_result=True)
def reconcile_payouts() -> int:
    """The periodic form of `manage.py reconcile_payouts` (beat, hourly): asks the gateway about the
    payouts in transit longer than PAYOUT_RECONCILE_AFTER_SECONDS and settles them."""
    return services.payouts_reconcile(actor=None).settled
