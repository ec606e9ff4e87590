"""The payments API with PAYMENT_GATEWAY=stripe, against a local server speaking Stripe's wire format."""

import pytest
from django.core.management import call_command

from apps.gateways.models import GatewayAttempt
from apps.payments.models import Payment
from apps.payments.tests.factories import sum_of_postings

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stripe_gateway(fake_stripe, settings):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_TIMEOUT_SECONDS = 1
    settings.STRIPE_SEARCH_GRACE_SECONDS = 0
    return fake_stripe


def create(client, **body):
    payload = {"amount": 5000, "currency": "EUR", "payment_method": "tok_visa", **body}
    return client.post("/api/v1/payments", payload, format="json")


def intent_creations(fake):
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v1/payment_intents"]


def test_purchase_is_one_payment_intent_keyed_by_the_payment(auth_client, stripe_gateway):
    body = create(auth_client).json()
    assert body["status"] == "succeeded"
    assert body["gateway_reference"].startswith("pi_")
    assert stripe_gateway.charges_made == 1
    (creation,) = intent_creations(stripe_gateway)
    assert creation.idempotency_key == body["id"]
    assert sum_of_postings("platform_revenue", "EUR") == 5000


def test_a_5xx_then_success_charges_once_because_the_key_reached_stripe(auth_client, stripe_gateway):
    stripe_gateway.fail_after_charge_next(1)  # charged at Stripe, but the answer is a 500
    body = create(auth_client).json()
    assert body["status"] == "succeeded"  # the eager retry repeated the call with the same key
    creations = intent_creations(stripe_gateway)
    assert len(creations) == 2
    assert {r.idempotency_key for r in creations} == {body["id"]}
    assert stripe_gateway.charges_made == 1
    assert sum_of_postings("platform_revenue", "EUR") == 5000


def test_decline_is_a_failed_payment(auth_client, stripe_gateway):
    body = create(auth_client, payment_method="tok_chargeDeclinedInsufficientFunds").json()
    assert body["status"] == "failed"
    assert body["failure_code"] == "insufficient_funds"


def test_manual_capture_and_refund_through_stripe(auth_client, stripe_gateway):
    payment = create(auth_client, capture_method="manual").json()
    assert payment["status"] == "requires_capture"
    captured = auth_client.post(f"/api/v1/payments/{payment['id']}/capture", {"amount": 3000}, format="json")
    assert captured.json()["status"] == "succeeded"
    assert stripe_gateway.payment_intent(payment["gateway_reference"])["amount_received"] == 3000
    refund = auth_client.post(f"/api/v1/payments/{payment['id']}/refunds", {"amount": 1000}, format="json")
    assert refund.json()["status"] == "succeeded"
    assert [r["amount"] for r in stripe_gateway.refunds] == [1000]
    assert sum_of_postings("platform_revenue", "EUR") == 2000


def test_a_timeout_leaves_reconcile_and_reconciliation_settles_it(auth_client, stripe_gateway):
    stripe_gateway.hang_next(1, seconds=2.5)  # longer than STRIPE_TIMEOUT_SECONDS
    body = create(auth_client).json()
    assert body["status"] == "reconcile"
    assert sum_of_postings("platform_revenue", "EUR") == 0
    call_command("reconcile_payments")
    payment = Payment.objects.get(pk=body["id"])
    assert payment.status == "succeeded"
    assert stripe_gateway.charges_made == 1
    assert sum_of_postings("platform_revenue", "EUR") == 5000


def test_an_open_circuit_stops_calling_stripe_and_payments_wait_in_processing(
    auth_client, stripe_gateway, settings
):
    settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = 2
    settings.GATEWAY_CIRCUIT_COOLDOWN_SECONDS = 60
    settings.PAYMENT_RETRY_MAX_ATTEMPTS = 3
    settings.CELERY_TASK_ALWAYS_EAGER = False  # retries wait for a worker, as in production
    from config.celery import app

    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    try:
        stripe_gateway.fail_next(2, status=503)
        first = create(auth_client).json()
        second = create(auth_client).json()
        calls_when_opened = len(stripe_gateway.requests)
        third = create(auth_client).json()
    finally:
        app.conf.task_always_eager = True
    assert [first["status"], second["status"], third["status"]] == ["processing"] * 3
    assert len(stripe_gateway.requests) == calls_when_opened  # the third never reached Stripe
    assert GatewayAttempt.objects.filter(subject_id=third["id"], error_code="gateway_circuit_open").exists()
