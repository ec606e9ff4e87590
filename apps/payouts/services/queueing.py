"""Handing a payout to the worker once the change that readied it has committed."""

from __future__ import annotations

from django.db import transaction

from apps.core.deferred import enqueue


def send_payout_now(payout_id: str) -> bool:
    """Queues the payout's gateway step (`apps.payouts.tasks.send_payout`); a broker that refuses
    leaves it to the payouts sweep, which finds it waiting."""
    from apps.payouts.tasks import send_payout  # the tasks module imports the services

    return enqueue(send_payout, payout_id, fallback="the payouts sweep")


def send_on_commit(payout_id: str) -> None:
    transaction.on_commit(lambda: send_payout_now(payout_id))
