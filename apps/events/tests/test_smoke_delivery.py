import json

import pytest
import stripe

from apps.events.models import Event, WebhookDelivery
from apps.payments.services import payment_create


@pytest.mark.django_db(transaction=True)
def test_a_payment_is_an_event_delivered_signed_to_the_merchants_endpoint(user, receiver, endpoint_for):
    endpoint, secret = endpoint_for(user, receiver.url)

    payment = payment_create(actor=user, owner=user, amount=1_500, currency="USD", payment_method="tok_visa")

    requests = receiver.wait_for(2)
    bodies = [json.loads(r.body) for r in requests]
    assert [b["type"] for b in bodies] == ["payment.created", "payment.succeeded"]
    assert bodies[0]["data"]["object"]["id"] == payment.pk
    assert bodies[0]["data"]["object"]["status"] == "pending"
    assert bodies[1]["data"]["object"]["status"] == "succeeded"
    header = requests[1].headers["Paydesk-Signature"]
    stripe.WebhookSignature.verify_header(requests[1].body.decode(), header, secret, tolerance=300)
    assert Event.objects.filter(user=user).count() == 2
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
