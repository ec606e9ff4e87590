"""A worker SIGKILLed in the middle of a payment's retries: the retry is redelivered to the next
worker and the payment ends exactly once (one capture at the gateway, one ledger entry, one event).

`tok_transientError` fails its first two gateway calls. The first runs inside the request; the
retries run on a real `celery -A config worker` on the real RabbitMQ. The test holds the
gateway's row for this charge locked from a connection of its own, so the worker's retry is
caught inside the gateway call, then kills that worker with SIGKILL (no shutdown, no ack).
"""

import psycopg
import pytest
from django.db import connection

from apps.accounts.tests.factories import UserFactory
from apps.core.models import OutboxEvent
from apps.gateways.models import SimulatedCharge
from apps.ledger.models import JournalEntry
from apps.payments.models import Payment
from apps.payments.services import payment_create

pytestmark = pytest.mark.e2e


def other_connection() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )


def backends_waiting_for_a_lock(probe: psycopg.Connection) -> int:
    (count,) = probe.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return count


def test_a_worker_killed_mid_retry_hands_the_retry_to_the_next_worker_and_the_payment_settles_once(
    workers, wait_for, settings
):
    settings.PAYMENT_RETRY_BASE_SECONDS = 0.2
    worker_env = {"PAYMENT_RETRY_BASE_SECONDS": "0.2"}
    ada = UserFactory()
    holder = other_connection()
    probe = other_connection()
    probe.autocommit = True
    try:
        # given: a payment whose first gateway call failed, its retry queued, and the gateway's
        # row for this charge locked by someone else, so the retry will block inside the call
        payment = payment_create(
            actor=ada, owner=ada, amount=4_200, currency="USD", payment_method="tok_transientError"
        )
        assert payment.status == "processing"
        charge = SimulatedCharge.objects.get(idempotency_key=payment.pk)
        table, key = SimulatedCharge._meta.db_table, SimulatedCharge._meta.pk.column
        holder.execute(f"SELECT 1 FROM {table} WHERE {key} = %s FOR UPDATE", [charge.pk])  # noqa: S608

        first = workers.start(**worker_env)
        wait_for(
            lambda: backends_waiting_for_a_lock(probe) >= 1,
            timeout=30,
            what="the worker's retry to be inside the gateway call",
            log=first.log_path,
        )

        # when: the machine loses that worker mid-task, and the lock goes away
        workers.kill(first)
        holder.rollback()
        second = workers.start(**worker_env)

        # then: the next worker gets the retry, and the payment settles
        wait_for(
            lambda: Payment.objects.get(pk=payment.pk).status == "succeeded",
            timeout=60,
            what="the payment to succeed on the next worker",
            log=second.log_path,
        )
    finally:
        holder.close()
        probe.close()

    payment.refresh_from_db()
    assert payment.amount_captured == 4_200
    # the gateway was asked 3 times in all (2 transient failures, then the charge) and charged once
    charge.refresh_from_db()
    assert charge.status == "captured"
    assert charge.attempts == 3
    assert JournalEntry.objects.filter(kind="payment_capture", memo=f"payment {payment.pk}").count() == 1
    succeeded = OutboxEvent.objects.filter(event_type="payment.succeeded", aggregate_id=payment.pk)
    assert succeeded.count() == 1
    assert "retry_payment_operation" in second.log_path.read_text()
