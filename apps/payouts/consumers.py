"""Outbox consumers of the payouts app."""

from __future__ import annotations

from apps.core.models import OutboxEvent
from apps.core.outbox import consumer
from apps.payouts.services import send_payout_now


class SendNotQueued(Exception):
    """The broker refused the task: the event stays undelivered and is handed over again."""


@consumer("payout.created", name="payouts.send", owns_transactions=True)
def send_created_payout(event: OutboxEvent) -> None:
    """Queues a new payout's gateway step, unless it is held for review (a reviewer's approval queues
    it then). Recorded as consumed once the broker has the task; queued twice, it is sent once (the
    step's idempotency key is the payout's id, and a payout already sent is left as it is)."""
    if event.payload.get("review_status"):
        return
    if not send_payout_now(event.payload["payout"]):
        raise SendNotQueued(f"the gateway step of payout {event.payload['payout']} could not be queued")
