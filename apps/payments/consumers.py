"""Outbox consumers of the payments app."""

from __future__ import annotations

from apps.core.deferred import enqueue
from apps.core.models import OutboxEvent
from apps.core.outbox import consumer
from apps.payments.services import PROCESSING_REQUESTED
from apps.payments.tasks import run_payment_step


class StepNotQueued(Exception):
    """The broker refused the step's task: the event stays undelivered and is handed over again."""


@consumer(PROCESSING_REQUESTED, name="payments.start_step", owns_transactions=True)
def start_step(event: OutboxEvent) -> None:
    """Queues the gateway step of a payment accepted with `Prefer: respond-async` on the payments
    queue (`run_payment_step`), where the payments' worker runs it.

    Recorded as consumed only once the broker has the task: if publishing fails, this consumer fails,
    so the event is delivered again (the delivery's retries, the outbox sweep) and the step is late,
    never lost. Queued twice (a crash between the publish and the record), the step runs twice and
    charges once: its gateway call's idempotency key is the payment's id, and a payment no longer
    waiting for its step is left as it is.
    """
    payment_id = event.payload["payment"]
    if not enqueue(run_payment_step, payment_id, fallback="the outbox (delivered again)"):
        raise StepNotQueued(f"the step of {payment_id} could not be queued")
