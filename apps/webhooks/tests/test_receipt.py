"""The receipt a delivery is answered with: declared once, the same object as before, for both providers."""

import pytest

from apps.webhooks.models import WebhookEvent
from apps.webhooks.tests.factories import anet_event, stripe_event

pytestmark = pytest.mark.django_db


def test_the_receipt_is_exactly_the_stored_event_and_whether_it_was_new(deliver):
    event = stripe_event("customer.created", {"id": "cus_1", "object": "customer"})
    first = deliver.stripe(event).json()
    again = deliver.stripe(event).json()
    anet = deliver.anet(anet_event("net.authorize.customer.created", {"id": "394"})).json()

    for body, duplicate in ((first, False), (again, True), (anet, False)):
        stored = WebhookEvent.objects.get(pk=body["id"])
        assert body == {
            "id": stored.pk,
            "object": "webhook_event",
            "provider": stored.provider,
            "provider_event_id": stored.provider_event_id,
            "type": stored.type,
            "status": stored.status,
            "duplicate": duplicate,
        }
    assert (first["provider"], anet["provider"]) == ("stripe", "authorize_net")
