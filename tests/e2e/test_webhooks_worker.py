"""A signed webhook is answered before any processing; a real `celery -A config worker` applies it."""

import pytest
from django.test import Client

from apps.payments.models import Refund
from apps.payments.services import payment_create
from apps.payments.tests.factories import sum_of_postings
from apps.webhooks.models import WebhookEvent
from apps.webhooks.tests.factories import ANET_KEY, anet_event, anet_signature, encode

pytestmark = pytest.mark.e2e


def test_worker_applies_a_refund_made_at_the_provider_once(celery_worker_process, wait_for, user, settings):
    settings.AUTHORIZENET_SIGNATURE_KEY = ANET_KEY
    payment = payment_create(actor=user, owner=user, amount=2000, currency="USD", payment_method="tok_visa")
    body = encode(
        anet_event(
            "net.authorize.payment.refund.created",
            {
                "id": "70000000001",
                "refTransId": payment.gateway_reference,
                "responseCode": 1,
                "authAmount": 7.5,
            },
        )
    )

    def deliver():
        return Client().post(
            "/api/v1/webhooks/authorize-net",
            data=body,
            content_type="application/json",
            HTTP_X_ANET_SIGNATURE=anet_signature(body),
        )

    first = deliver()
    # Answered as soon as it was stored: no worker had touched it yet.
    assert first.status_code == 200
    assert first.json()["status"] == "received"

    def processed():
        return WebhookEvent.objects.filter(pk=first.json()["id"], status="processed").exists()

    wait_for(processed, timeout=30, what="the worker to process the webhook event")
    again = deliver()
    assert again.json() == {**first.json(), "status": "processed", "duplicate": True}

    payment.refresh_from_db()
    assert (payment.amount_refunded, payment.status) == (750, "succeeded")
    assert Refund.objects.filter(payment=payment).count() == 1
    assert sum_of_postings("platform_revenue", "USD") == 1250
