"""The database connection is cut between the gateway's answer and our commit: Stripe has charged
the card, our write of that answer is lost. The payment is left `reconcile` (never a 500, never a
guess), and `reconcile_payments` settles it from what Stripe says: succeeded, booked once.

The moment is made, not hoped for: Stripe's answer is delayed a little, during which the test
locks the payment row from a connection of its own, so the request's settle transaction waits
on it; the test then kills that backend with `pg_terminate_backend` (as a failover or a network
cut would) and lets go of the row.
"""

import threading
import time

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, connections

from apps.ledger.models import JournalEntry
from apps.payments.models import Payment
from tests.fakes.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db(transaction=True)


def other_connection() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )


@pytest.fixture
def stripe(settings):
    with FakeStripe() as server:
        settings.PAYMENT_GATEWAY = "stripe"
        settings.STRIPE_API_KEY = server.api_key
        settings.STRIPE_API_BASE = server.url
        settings.STRIPE_TIMEOUT_SECONDS = 5
        settings.STRIPE_SEARCH_GRACE_SECONDS = 0
        yield server


def wait_until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_a_connection_cut_after_the_gateway_charged_leaves_reconcile_and_reconciliation_settles_it(
    stripe, auth_client, user
):
    stripe.hang_next(1, seconds=1.5)  # the answer comes, but late: room to set the trap
    result = {}

    def pay():
        try:
            result["response"] = auth_client.post(
                "/api/v1/payments",
                {"amount": 7_700, "currency": "EUR", "payment_method": "tok_visa"},
                format="json",
            )
        finally:
            connections.close_all()

    request = threading.Thread(target=pay)
    locker = other_connection()
    killer = other_connection()
    killer.autocommit = True
    try:
        request.start()
        # the payment row exists (opened, committed) while Stripe is still thinking: lock it
        payment_id = wait_until(
            lambda: Payment.objects.filter(owner=user).values_list("pk", flat=True).first()
        )
        table, key = Payment._meta.db_table, Payment._meta.pk.column
        locker.execute(f"SELECT 1 FROM {table} WHERE {key} = %s FOR UPDATE", [payment_id])  # noqa: S608

        # Stripe answers and charges; the settle transaction waits on the row: cut its connection
        (blocked_pid,) = wait_until(
            lambda: killer.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> %s",
                [locker.info.backend_pid],
            ).fetchone()
        )
        assert stripe.charges_made == 1
        killer.execute("SELECT pg_terminate_backend(%s)", [blocked_pid])
        locker.rollback()
        request.join(timeout=30)
    finally:
        locker.close()
        killer.close()

    # then: the client gets an answer, not a 500, and nothing is booked on a guess
    response = result["response"]
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "reconcile"
    payment = Payment.objects.get(pk=payment_id)
    assert payment.status == "reconcile"
    assert not JournalEntry.objects.filter(kind="payment_capture").exists()

    # when: reconciliation runs (as beat does)
    call_command("reconcile_payments")

    # then: Stripe's charge is recognised: succeeded, booked once, charged once
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert payment.amount_captured == 7_700
    assert JournalEntry.objects.filter(kind="payment_capture", memo=f"payment {payment_id}").count() == 1
    assert stripe.charges_made == 1
    call_command("reconcile_payments")  # a second pass changes nothing
    assert JournalEntry.objects.filter(kind="payment_capture").count() == 1
