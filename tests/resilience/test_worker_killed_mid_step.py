"""A worker SIGKILLed in the middle of an asynchronous payment's gateway step (`Prefer: respond-async`):
the gateway had charged the card, the worker died before recording it; the step is redelivered to
the next worker, which finds the charge by the payment's idempotency key and records it: one charge,
one ledger entry, one `payment.succeeded`.

The payment is accepted by the API (202); its outbox event reaches a real `celery -A config worker`
on the real RabbitMQ, whose consumer queues the step on the payments queue. The test holds the
payment's row locked from a connection of its own, so the worker's step is caught after the gateway
call, waiting to settle; then it kills that worker with SIGKILL (no shutdown, no ack).
"""

import pytest

from apps.core.models import OutboxEvent
from apps.gateways.models import SimulatedCharge
from apps.ledger.models import JournalEntry
from apps.payments.models import Payment
from tests.resilience.test_worker_killed_mid_retry import backends_waiting_for_a_lock, other_connection

pytestmark = pytest.mark.e2e


def test_a_worker_killed_after_charging_hands_the_step_to_the_next_worker_and_the_card_is_charged_once(
    workers, auth_client, wait_for
):
    holder = other_connection()
    probe = other_connection()
    probe.autocommit = True
    try:
        # given: an accepted payment (no worker yet), and its row locked by someone else, so the
        # step will block when it comes to record the gateway's answer
        response = auth_client.post(
            "/api/v1/payments",
            {"amount": 4_200, "currency": "USD", "payment_method": "tok_visa"},
            format="json",
            HTTP_PREFER="respond-async",
        )
        assert response.status_code == 202
        payment_id = response.json()["id"]
        table = Payment._meta.db_table
        holder.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [payment_id])  # noqa: S608

        first = workers.start()
        wait_for(
            lambda: (
                SimulatedCharge.objects.filter(idempotency_key=payment_id, status="captured").exists()
                and backends_waiting_for_a_lock(probe) >= 1
            ),
            timeout=60,
            what="the worker's step to have charged the card and to wait to record it",
            log=first.log_path,
        )

        # when: the machine loses that worker mid-step, and the lock goes away
        workers.kill(first)
        holder.rollback()
        assert Payment.objects.get(pk=payment_id).status == "pending"
        second = workers.start()

        # then: the next worker gets the step again, and the payment settles
        wait_for(
            lambda: Payment.objects.get(pk=payment_id).status == "succeeded",
            timeout=60,
            what="the payment to succeed on the next worker",
            log=second.log_path,
        )
    finally:
        holder.close()
        probe.close()

    charge = SimulatedCharge.objects.get(idempotency_key=payment_id)
    assert (charge.status, charge.amount_captured) == ("captured", 4_200)
    assert charge.attempts == 2  # asked twice (once by each worker), charged once
    assert JournalEntry.objects.filter(kind="payment_capture", memo=f"payment {payment_id}").count() == 1
    assert OutboxEvent.objects.filter(event_type="payment.succeeded", aggregate_id=payment_id).count() == 1
    assert "run_payment_step" in second.log_path.read_text()
