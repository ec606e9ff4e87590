"""Fixtures for the webhooks app: configured secrets and a client that delivers signed events."""

from __future__ import annotations

import pytest
import stripe
from django.test import Client

from apps.payments.models import Payment
from apps.payments.services import payment_create
from apps.webhooks.tests.factories import ANET_KEY, STRIPE_SECRET, anet_signature, encode, stripe_signature

STRIPE_PATH = "/api/v1/webhooks/stripe"
ANET_PATH = "/api/v1/webhooks/authorize-net"


@pytest.fixture(autouse=True)
def webhook_secrets(settings):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET
    settings.STRIPE_WEBHOOK_SECRETS = []
    settings.AUTHORIZENET_SIGNATURE_KEY = ANET_KEY
    settings.WEBHOOK_MAX_ATTEMPTS = 3


@pytest.fixture
def deliver():
    """`deliver.stripe(event)` / `deliver.anet(event)`: POSTs the event signed as its provider would
    (override with `signature=`, or send other bytes with `body=`); returns the response."""

    class Deliver:
        client = Client()

        def stripe(self, event=None, *, body=None, signature=None, **headers):
            body = encode(event) if body is None else body
            signature = stripe_signature(body) if signature is None else signature
            return self.client.post(
                STRIPE_PATH,
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature,
                **headers,
            )

        def anet(self, event=None, *, body=None, signature=None):
            body = encode(event) if body is None else body
            signature = anet_signature(body) if signature is None else signature
            return self.client.post(
                ANET_PATH, data=body, content_type="application/json", HTTP_X_ANET_SIGNATURE=signature
            )

    return Deliver()


@pytest.fixture
def stripe_payment(fake_stripe, settings, user):
    """`stripe_payment(amount)`: a EUR payment charged through the Stripe gateway (the fake)."""
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_TIMEOUT_SECONDS = 0.5

    def make(amount=5000, **fields):
        return payment_create(
            actor=user, owner=user, amount=amount, currency="EUR", payment_method="tok_visa", **fields
        )

    return make


@pytest.fixture
def dashboard(fake_stripe):
    """Stripe's API as the merchant's dashboard uses it: changes made at Stripe, not through Paydesk."""
    return stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url}).v1


@pytest.fixture
def lost_answer_payment(stripe_payment, fake_stripe, dashboard):
    """A payment Stripe charged but whose answer never came back: `reconcile`, no gateway reference.
    Returns (payment, the PaymentIntent as Stripe holds it)."""
    fake_stripe.hang_next(1, seconds=2)
    payment = stripe_payment(5000)
    assert payment.status == Payment.Status.RECONCILE
    assert payment.gateway_reference == ""
    found = dashboard.payment_intents.search(
        params={"query": f"metadata['paydesk_idempotency_key']:'{payment.pk}'"}
    )
    return payment, found.data[0].to_dict()
