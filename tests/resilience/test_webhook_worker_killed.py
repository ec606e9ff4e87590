"""A worker SIGKILLed in the middle of a webhook POST: the delivery's lease runs out, the sweep
hands it to the next worker, and the receiver gets the event again with the same event id — once
more at most, and the delivery ends `succeeded` with the attempt that worked recorded."""

import json

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.events.models import WebhookDelivery
from apps.events.services import deliveries_sweep, webhook_endpoint_create
from apps.payments.services import payment_create
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

LEASE = "6"


def test_a_worker_killed_mid_delivery_leaves_it_to_the_next_worker_with_the_same_event_id(
    workers, wait_for, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.OUTBOUND_WEBHOOK_LEASE_SECONDS = int(LEASE)
    env = {"WEBHOOK_ALLOW_PRIVATE_URLS": "true", "OUTBOUND_WEBHOOK_LEASE_SECONDS": LEASE}
    with WebhookReceiver() as receiver:
        ada = UserFactory()
        webhook_endpoint_create(actor=ada, user=ada, url=receiver.url, enabled_events=["payment.succeeded"])
        receiver.behave("hang", seconds=60)
        first = workers.start(**env)

        # given: the worker is inside the POST (the receiver holds the request)
        payment_create(actor=ada, owner=ada, amount=2_500, currency="USD", payment_method="tok_visa")
        receiver.wait_for(1, timeout=60)
        delivery = WebhookDelivery.objects.get()
        assert delivery.lease_expires_at is not None
        assert delivery.attempts == 0

        # when: the machine loses that worker mid-send; the receiver recovers
        workers.kill(first)
        receiver.behave("ok")
        receiver.released.set()

        # then: nobody sends it while the dead worker's lease lasts ...
        assert delivery.lease_expires_at > timezone.now()
        assert deliveries_sweep() == 0
        # ... and once it has run out, the sweep hands it to the next worker, which delivers it
        second = workers.start(**env)
        wait_for(lambda: delivery.lease_expires_at <= timezone.now(), timeout=10, what="the lease to run out")

        def delivered():
            deliveries_sweep()
            return WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded"

        wait_for(
            delivered, timeout=60, what="the delivery to succeed on the next worker", log=second.log_path
        )
        requests = receiver.requests
        assert len(requests) == 2  # the interrupted POST, and one more
        assert len({json.loads(r.body)["id"] for r in requests}) == 1
        row = WebhookDelivery.objects.get(pk=delivery.pk)
        assert (row.status, row.attempts, row.last_status_code) == ("succeeded", 1, 200)
