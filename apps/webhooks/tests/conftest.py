"""Fixtures for the webhooks app: configured secrets and a client that delivers signed events."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.payments.tests.conftest import fake_stripe  # noqa: F401 - the shared Stripe look-alike
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
