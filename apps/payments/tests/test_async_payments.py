"""POST /payments with `Prefer: respond-async`: 202 with the payment `pending`, and a worker runs the
same gateway step the synchronous path runs, to the same outcome, announced by its `payment.*` event.

Here tasks are eager (the step runs right after the request's commit, through the outbox's delivery
and the payments consumer), except where a test sends them to a broker that is down. Real workers,
killed mid-step or cut off from a broker that stops, are in tests/e2e/test_async_payments_worker.py.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from apps.core.models import ConsumedEvent, OutboxEvent
from apps.core.outbox import sweep_outbox
from apps.gateways.models import GatewayAttempt, SimulatedCharge
from apps.ledger.models import JournalEntry
from apps.payments.consumers import start_step
from apps.payments.models import PROCESSING_REQUESTED, Payment
from apps.payments.services import payment_create, payments_reconcile_due, run_pending_operation
from apps.payments.tests.factories import sum_of_postings
from tests.workers import tasks_published_to

pytestmark = pytest.mark.django_db(transaction=True)

ASYNC = {"HTTP_PREFER": "respond-async"}


def pay(client, token="tok_visa", key=None, prefer=ASYNC, **body):
    headers = {**prefer, **({"HTTP_IDEMPOTENCY_KEY": key} if key else {})}
    payload = {"amount": 4200, "currency": "USD", "payment_method": token, **body}
    return client.post("/api/v1/payments", payload, format="json", **headers)


def events_of(payment_id):
    return list(
        OutboxEvent.objects.filter(aggregate_id=payment_id)
        .order_by("created_at", "id")
        .values_list("event_type", flat=True)
    )


@pytest.mark.parametrize(
    ("token", "capture_method", "outcome", "event"),
    [
        ("tok_visa", "automatic", "succeeded", "payment.succeeded"),
        ("tok_chargeDeclined", "automatic", "failed", "payment.failed"),
        ("tok_riskLevelElevated", "automatic", "in_review", "payment.review_opened"),
        ("tok_visa", "manual", "requires_capture", "payment.requires_capture"),
        ("tok_responseLost", "automatic", "reconcile", "payment.reconcile"),
    ],
)
def test_accepted_at_once_and_ends_where_the_synchronous_payment_ends(
    auth_client, token, capture_method, outcome, event
):
    synchronous = pay(auth_client, token, prefer={}, capture_method=capture_method)

    response = pay(auth_client, token, capture_method=capture_method)

    assert synchronous.status_code == 201
    assert "Preference-Applied" not in synchronous
    assert response.status_code == 202
    assert response["Preference-Applied"] == "respond-async"
    body = response.json()
    assert (body["status"], body["amount"], body["amount_captured"]) == ("pending", 4200, 0)
    payment = Payment.objects.get(pk=body["id"])
    assert payment.status == outcome == synchronous.json()["status"]
    assert {"payment.created", PROCESSING_REQUESTED, event} <= set(events_of(payment.pk))
    # the raw exchange of the worker's gateway call: its attempt and the raw-log event (MongoDB sink)
    attempt = GatewayAttempt.objects.get(subject_id=payment.pk, operation="authorize")
    exchange = OutboxEvent.objects.get(event_type="payment.gateway_exchange", aggregate_id=str(attempt.pk))
    assert exchange.payload["payment"] == payment.pk


def test_the_step_is_the_workers_not_the_requests_and_a_broker_outage_only_delays_it(auth_client, settings):
    settings.PAYMENT_STUCK_AFTER_SECONDS = 0
    # given: the broker is down while the payment is accepted
    with tasks_published_to():
        response = pay(auth_client)
        payment_id = response.json()["id"]

        # then: accepted, nothing charged, the step waiting in the outbox
        assert response.status_code == 202
        assert not SimulatedCharge.objects.exists()
        waiting = OutboxEvent.objects.get(aggregate_id=payment_id, event_type=PROCESSING_REQUESTED)
        assert waiting.delivered_at is None
        # and reconciliation leaves it alone: its step is coming, it is not stuck
        payments_reconcile_due(older_than=timedelta(0))
        assert Payment.objects.get(pk=payment_id).status == "pending"

    # when: the broker is back and the outbox sweep hands the event over again
    sweep_outbox(older_than=timedelta(0))

    # then: the worker's step charged it, once
    assert Payment.objects.get(pk=payment_id).status == "succeeded"
    assert SimulatedCharge.objects.get().idempotency_key == payment_id
    assert ConsumedEvent.objects.filter(event_id=waiting.pk, consumer="payments.start_step").count() == 1
    assert sum_of_postings("platform_revenue", "USD") == 4200


def test_a_consumer_that_cannot_queue_the_step_leaves_the_event_to_be_delivered_again(auth_client):
    with tasks_published_to():
        payment_id = pay(auth_client).json()["id"]
        event = OutboxEvent.objects.get(aggregate_id=payment_id, event_type=PROCESSING_REQUESTED)

        with pytest.raises(Exception, match="could not be queued"):
            start_step(event)

    assert not ConsumedEvent.objects.filter(event_id=event.pk).exists()
    assert Payment.objects.get(pk=payment_id).status == "pending"


def test_a_replay_answers_the_first_202_and_its_body(auth_client):
    first = pay(auth_client, key="async-once")
    again = pay(auth_client, key="async-once")

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Payment.objects.count() == 1
    assert SimulatedCharge.objects.count() == 1


@pytest.mark.parametrize(
    "prefer", ["RESPOND-ASYNC", "wait=10, respond-async;x=1", "handling=lenient,respond-async"]
)
def test_the_preference_is_read_as_rfc_7240_writes_it(auth_client, prefer):
    assert pay(auth_client, prefer={"HTTP_PREFER": prefer}).status_code == 202


def test_other_preferences_are_ignored_and_the_payment_is_synchronous(auth_client):
    response = pay(auth_client, prefer={"HTTP_PREFER": "return=minimal"})

    assert response.status_code == 201
    assert response.json()["status"] == "succeeded"
    assert "Preference-Applied" not in response


def test_a_wallet_payment_has_no_gateway_step_and_is_made_at_once(auth_client, funded_wallet):
    wallet = funded_wallet(10_000)

    response = pay(auth_client, f"wallet:{wallet.pk}")

    assert response.status_code == 201
    assert "Preference-Applied" not in response
    assert response.json()["status"] == "succeeded"


def test_a_bad_request_is_refused_before_anything_is_accepted(auth_client):
    unknown = pay(auth_client, "tok_nonsense")
    card_number = pay(auth_client, "4242424242424242")

    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "resource_missing")
    assert (card_number.status_code, card_number.json()["error"]["code"]) == (400, "raw_card_data_rejected")
    assert not Payment.objects.exists()


def test_the_step_delivered_twice_or_run_by_two_workers_at_once_charges_once(user):
    # given: an accepted payment whose step has not run (the broker was down)
    with tasks_published_to():
        payment = payment_create(
            actor=user, owner=user, amount=4200, currency="USD", payment_method="tok_visa", respond_async=True
        )
    start = threading.Barrier(4)
    outcomes = []

    def run():
        try:
            start.wait(timeout=10)
            outcomes.append(run_pending_operation(actor=None, payment_id=payment.pk).status)
        finally:
            connection.close()

    # when: four workers run the step at the same moment (a redelivery racing the first)
    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: one charge at the gateway, one capture in the books, one event
    assert set(outcomes) == {"succeeded"}
    assert SimulatedCharge.objects.count() == 1
    assert JournalEntry.objects.filter(kind="payment_capture", memo=f"payment {payment.pk}").count() == 1
    assert OutboxEvent.objects.filter(aggregate_id=payment.pk, event_type="payment.succeeded").count() == 1
    assert sum_of_postings("platform_revenue", "USD") == 4200


def test_on_authorize_net_an_accepted_payment_is_charged_by_the_worker_and_held_for_review(
    auth_client, fake_authorizenet
):
    response = pay(auth_client, fake_authorizenet.nonce("held"))

    payment = Payment.objects.get(pk=response.json()["id"])
    assert response.status_code == 202
    assert payment.status == "in_review"
    assert fake_authorizenet.transaction(payment.gateway_reference)["status"] == "FDSPendingReview"
