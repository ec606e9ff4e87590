"""The payments API on each card gateway with a real provider behind it (PAYMENT_GATEWAY=stripe,
authorizenet), against local servers speaking their wire formats: the same API, lifecycle and error
codes on each (`card_gateway`). Authorize.Net's own cases (refunds before settlement, its tokens)
follow at the end."""

import pytest
from django.core.management import call_command

from apps.gateways.models import GatewayAttempt
from apps.payments.models import Payment, Refund
from apps.payments.tests.factories import sum_of_postings

pytestmark = pytest.mark.django_db(transaction=True)


def create(client, card_gateway, card="visa", **body):
    payload = {"amount": 5000, "currency": "EUR", "payment_method": card_gateway.token(card), **body}
    return client.post("/api/v1/payments", payload, format="json")


def decide(client, payment_id, decision):
    return client.put(
        f"/api/v1/payments/{payment_id}/review",
        {"decision": decision, "note": "called the customer"},
        format="json",
    )


def test_a_purchase_is_one_charge_keyed_by_the_payment(auth_client, card_gateway):
    body = create(auth_client, card_gateway).json()

    assert body["status"] == "succeeded"
    assert body["gateway_reference"]
    assert body["payment_method_details"]["type"] == "card"
    assert card_gateway.fake.charges_made == 1
    assert card_gateway.charge_requests(body["id"]) == 1
    assert sum_of_postings("platform_revenue", "EUR") == 5000


def test_a_5xx_after_the_charge_is_retried_and_charges_once(auth_client, card_gateway):
    card_gateway.fake.fail_after_charge_next(1)  # charged at the provider, but the answer is a 500

    body = create(auth_client, card_gateway).json()

    assert body["status"] == "succeeded"  # the eager retry found the first charge
    assert card_gateway.fake.charges_made == 1
    assert sum_of_postings("platform_revenue", "EUR") == 5000


def test_a_decline_is_a_failed_payment(auth_client, card_gateway):
    for card, failure_code in card_gateway.declines:
        body = create(auth_client, card_gateway, card=card).json()

        assert (body["status"], body["failure_code"]) == ("failed", failure_code)
    assert sum_of_postings("platform_revenue", "EUR") == 0


def test_manual_capture_of_part_then_a_refund(auth_client, card_gateway):
    payment = create(auth_client, card_gateway, capture_method="manual").json()
    assert payment["status"] == "requires_capture"

    captured = auth_client.post(f"/api/v1/payments/{payment['id']}/capture", {"amount": 3000}, format="json")
    card_gateway.settle()
    refund = auth_client.post(f"/api/v1/payments/{payment['id']}/refunds", {"amount": 1000}, format="json")

    assert (captured.json()["status"], captured.json()["amount_captured"]) == ("succeeded", 3000)
    assert card_gateway.captured(payment["gateway_reference"]) == 3000
    assert refund.json()["status"] == "succeeded"
    assert card_gateway.refunds() == [1000]
    assert sum_of_postings("platform_revenue", "EUR") == 2000


def test_cancel_voids_the_authorization(auth_client, card_gateway):
    payment = create(auth_client, card_gateway, capture_method="manual").json()

    canceled = auth_client.post(
        f"/api/v1/payments/{payment['id']}/cancel", {"reason": "out of stock"}, format="json"
    )

    assert canceled.json()["status"] == "canceled"
    assert card_gateway.state(payment["gateway_reference"]) == "voided"
    assert sum_of_postings("platform_revenue", "EUR") == 0


def test_a_charge_the_provider_holds_waits_in_review_and_approving_captures_it(
    auth_client, reviewer_client, card_gateway
):
    held = create(auth_client, card_gateway, card="held", capture_method="manual").json()
    assert (held["status"], held["review"]["reasons"]) == ("in_review", ["gateway_elevated_risk"])
    assert sum_of_postings("platform_revenue", "EUR") == 0

    approved = decide(reviewer_client, held["id"], "approve").json()

    assert (approved["status"], approved["amount_captured"]) == ("succeeded", 5000)
    assert card_gateway.state(held["gateway_reference"]) == "captured"
    assert sum_of_postings("platform_revenue", "EUR") == 5000


def test_denying_a_held_charge_cancels_it_at_the_provider(auth_client, reviewer_client, card_gateway):
    held = create(auth_client, card_gateway, card="held", capture_method="manual").json()

    denied = decide(reviewer_client, held["id"], "deny").json()

    assert (denied["status"], denied["review"]["status"]) == ("canceled", "denied")
    assert card_gateway.state(held["gateway_reference"]) == "voided"
    assert sum_of_postings("platform_revenue", "EUR") == 0


def test_a_timeout_leaves_reconcile_and_reconciliation_settles_it(auth_client, card_gateway):
    card_gateway.fake.hang_next(1, seconds=2.5)  # longer than the gateway's read timeout

    body = create(auth_client, card_gateway).json()
    assert body["status"] == "reconcile"
    assert sum_of_postings("platform_revenue", "EUR") == 0
    call_command("reconcile_payments")

    payment = Payment.objects.get(pk=body["id"])
    assert payment.status == "succeeded"
    assert payment.gateway_reference
    assert card_gateway.fake.charges_made == 1
    assert sum_of_postings("platform_revenue", "EUR") == 5000


def test_an_open_circuit_stops_calling_the_provider_and_payments_wait_in_processing(
    auth_client, card_gateway, settings
):
    settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = 2
    settings.GATEWAY_CIRCUIT_COOLDOWN_SECONDS = 60
    settings.PAYMENT_RETRY_MAX_ATTEMPTS = 3
    settings.CELERY_TASK_ALWAYS_EAGER = False  # retries wait for a worker, as in production
    from config.celery import app

    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    try:
        card_gateway.fake.fail_next(2, status=503)
        first = create(auth_client, card_gateway).json()
        second = create(auth_client, card_gateway).json()
        calls_when_opened = len(card_gateway.fake.requests)
        third = create(auth_client, card_gateway).json()
    finally:
        app.conf.task_always_eager = True
    assert [first["status"], second["status"], third["status"]] == ["processing"] * 3
    assert len(card_gateway.fake.requests) == calls_when_opened  # the third never reached the provider
    assert GatewayAttempt.objects.filter(subject_id=third["id"], error_code="gateway_circuit_open").exists()


# --- Authorize.Net's own ---------------------------------------------------------------------------


@pytest.fixture
def anet(fake_authorizenet):
    return fake_authorizenet


def anet_payment(client, token, **body):
    return client.post(
        "/api/v1/payments",
        {"amount": 2000, "currency": "USD", "payment_method": token, **body},
        format="json",
    )


def test_on_authorize_net_a_full_refund_before_settlement_voids_the_charge(auth_client, anet):
    payment = anet_payment(auth_client, anet.nonce()).json()

    refund = auth_client.post(f"/api/v1/payments/{payment['id']}/refunds", {}, format="json").json()

    assert (refund["status"], refund["amount"]) == ("succeeded", 2000)
    assert anet.transaction(payment["gateway_reference"])["status"] == "voided"
    assert Payment.objects.get(pk=payment["id"]).status == "refunded"
    assert sum_of_postings("platform_revenue", "USD") == 0


def test_on_authorize_net_a_partial_refund_waits_for_settlement(auth_client, anet):
    payment = anet_payment(auth_client, anet.nonce()).json()

    early = auth_client.post(
        f"/api/v1/payments/{payment['id']}/refunds", {"amount": 500}, format="json"
    ).json()
    anet.settle()
    settled = auth_client.post(
        f"/api/v1/payments/{payment['id']}/refunds", {"amount": 500}, format="json"
    ).json()

    assert early["status"] == "failed"
    assert Refund.objects.get(pk=early["id"]).failure_code == "charge_not_settled"
    assert settled["status"] == "succeeded"
    assert Payment.objects.get(pk=payment["id"]).amount_refunded == 500
    assert sum_of_postings("platform_revenue", "USD") == 1500


def test_on_authorize_net_a_stored_profile_pays_and_a_token_of_another_gateway_is_refused(auth_client, anet):
    paid = anet_payment(auth_client, anet.profile("mastercard"))
    unknown_profile = anet_payment(auth_client, "anet_profile:123/456")
    stripe_token = anet_payment(auth_client, "tok_visa")

    assert paid.status_code == 201
    assert paid.json()["payment_method_details"] == {"type": "card", "brand": "mastercard", "last4": "0015"}
    for refused in (unknown_profile, stripe_token):
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "resource_missing"
    assert Payment.objects.count() == 1


def test_a_profile_whose_ids_read_like_a_card_number_is_a_token_not_card_data(auth_client, anet):
    # 10000000 and 20000004, joined, are 16 digits that pass the Luhn check.
    response = anet_payment(auth_client, "anet_profile:10000000/20000004")
    in_text = anet_payment(auth_client, anet.nonce(), description="profile 10000000/20000004")

    assert response.json()["error"]["code"] == "resource_missing"  # asked about, not refused as a card
    assert in_text.json()["error"]["code"] == "raw_card_data_rejected"


def test_on_authorize_net_a_held_purchase_is_in_review_and_its_approval_captures_it(
    auth_client, reviewer_client, anet
):
    held = anet_payment(auth_client, anet.nonce("held")).json()
    assert held["status"] == "in_review"
    assert anet.transaction(held["gateway_reference"])["status"] == "FDSPendingReview"

    approved = decide(reviewer_client, held["id"], "approve").json()

    assert approved["status"] == "succeeded"
    assert [r.fields["action"] for r in anet.sent("updateHeldTransactionRequest")] == ["approve"]
    assert anet.sent("priorAuthCaptureTransaction") == []  # the approval captured it
    assert anet.transaction(held["gateway_reference"])["status"] == "capturedPendingSettlement"
    assert sum_of_postings("platform_revenue", "USD") == 2000


@pytest.mark.parametrize(
    ("card", "status", "failure_code"),
    [("held", "in_review", ""), ("declined", "failed", "card_declined"), ("visa", "succeeded", "")],
)
def test_on_authorize_net_reconciliation_finds_a_lost_charge_by_its_reference(
    auth_client, anet, card, status, failure_code
):
    anet.hang_next(1, seconds=2.5)
    lost = anet_payment(auth_client, anet.nonce(card)).json()
    assert (lost["status"], lost["gateway_reference"]) == ("reconcile", None)

    call_command("reconcile_payments")

    payment = Payment.objects.get(pk=lost["id"])
    assert payment.status == status
    if failure_code:
        assert payment.failure_code == failure_code
    assert payment.gateway_reference == anet.transactions[0]["transId"]
    assert len(anet.sent("getUnsettledTransactionListRequest")) >= 1
