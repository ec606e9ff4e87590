"""A token the gateway does not know is a 400 `resource_missing`, with nothing written — as Stripe
answers it — for payments, deposits and subscriptions, on the simulated gateway and on Stripe. A
declined card is still a 201 `failed` payment (API.md).
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import auth_session_start
from apps.accounts.tests.factories import UserFactory
from apps.core.tests.rows import row_counts
from apps.ledger.models import JournalEntry
from apps.payments.models import Payment
from apps.subscriptions.services import subscription_create
from apps.wallets.services import wallet_create

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN = "tok_nonsense"


@pytest.fixture(params=["simulated", "stripe"])
def gateway(request, settings):
    """The configured gateway; on "stripe", the local Stripe look-alike (None on "simulated")."""
    if request.param == "simulated":
        settings.PAYMENT_GATEWAY = "simulated"
        return None
    fake = request.getfixturevalue("fake_stripe")
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_TIMEOUT_SECONDS = 1
    return fake


@pytest.fixture
def customer():
    return UserFactory()


@pytest.fixture
def client(customer) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_session_start(user=customer).tokens.access}")
    return client


def _requests(method: str, path: str, customer) -> tuple[str, str, dict]:
    if path == "payments":
        return method, "/api/v1/payments", {"amount": 1_000, "currency": "USD"}
    if path == "deposits":
        wallet = wallet_create(actor=customer, user=customer, currency="USD")
        return method, f"/api/v1/wallets/{wallet.pk}/deposits", {"amount": 1_000}
    if path == "subscriptions":
        body = {"plan_id": "plan_pro", "amount": 900, "currency": "USD", "billing_cycle": "monthly"}
        return method, "/api/v1/subscriptions", body
    subscription = subscription_create(
        actor=customer,
        owner=customer,
        plan_id="plan_basic",
        amount=500,
        currency="USD",
        billing_cycle="monthly",
        payment_method="tok_visa",
        trial_days=7,
    )
    return method, f"/api/v1/subscriptions/{subscription.pk}", {}


ENDPOINTS = [
    ("POST", "payments"),
    ("POST", "deposits"),
    ("POST", "subscriptions"),
    ("PATCH", "subscription"),
]


@pytest.mark.parametrize(("method", "what"), ENDPOINTS, ids=[f"{m} {w}" for m, w in ENDPOINTS])
def test_an_unknown_token_is_a_400_resource_missing_and_nothing_is_written(
    gateway, client, customer, method, what
):
    method, url, body = _requests(method, what, customer)
    charges_before = gateway.charges_made if gateway is not None else None
    before = row_counts()
    key = {"HTTP_IDEMPOTENCY_KEY": f"unknown-token-{what}"}

    response = client.generic(
        method, url, json.dumps({**body, "payment_method": UNKNOWN}), content_type="application/json", **key
    )

    assert response.status_code == 400, response.content[:500]
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "resource_missing",
        "payment_method",
    )
    assert UNKNOWN not in error["message"]
    # No payment, deposit, subscription, ledger entry, audit row, event, gateway attempt or
    # simulated charge — and the Idempotency-Key was not kept.
    assert row_counts() == before
    if gateway is not None:
        assert gateway.charges_made == charges_before  # no PaymentIntent at Stripe either

    fixed = client.generic(
        method,
        url,
        json.dumps({**body, "payment_method": "tok_visa"}),
        content_type="application/json",
        **key,
    )
    assert fixed.status_code in (200, 201), fixed.content[:500]
    assert "Idempotent-Replayed" not in fixed


def test_a_declined_card_is_still_a_201_failed_payment(gateway, client):
    response = client.post(
        "/api/v1/payments",
        {"amount": 1_000, "currency": "USD", "payment_method": "tok_chargeDeclined"},
        format="json",
    )

    assert response.status_code == 201
    assert (response.json()["status"], response.json()["failure_code"]) == ("failed", "card_declined")
    assert JournalEntry.objects.count() == 0


def test_stripe_is_asked_about_a_token_it_minted_and_charges_it(settings, fake_stripe, client):
    settings.PAYMENT_GATEWAY = "stripe"
    token = fake_stripe.create_token("visa")

    response = client.post(
        "/api/v1/payments", {"amount": 1_000, "currency": "USD", "payment_method": token}, format="json"
    )

    assert response.status_code == 201, response.content[:500]
    assert response.json()["status"] == "succeeded"
    asked = [r.path for r in fake_stripe.requests if r.method == "GET"]
    assert asked == [f"/v1/tokens/{token}"]
    assert Payment.objects.get().card_last4 == "4242"


def test_stripe_refuses_a_payment_method_it_does_not_know(settings, fake_stripe, client):
    settings.PAYMENT_GATEWAY = "stripe"

    response = client.post(
        "/api/v1/payments", {"amount": 1_000, "currency": "USD", "payment_method": "pm_1nope"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "resource_missing"
    assert [r.path for r in fake_stripe.requests] == ["/v1/payment_methods/pm_1nope"]
    assert not Payment.objects.exists()


def test_when_stripe_cannot_answer_the_look_up_the_charge_decides(settings, fake_stripe, client):
    settings.PAYMENT_GATEWAY = "stripe"
    token = fake_stripe.create_token("visa")
    fake_stripe.fail_next(1, status=503)  # the look-up meets the outage; the charge does not

    response = client.post(
        "/api/v1/payments", {"amount": 1_000, "currency": "USD", "payment_method": token}, format="json"
    )

    assert response.status_code == 201, response.content[:500]
    assert response.json()["status"] == "succeeded"
    assert fake_stripe.charges_made == 1
