"""Two workers never send the same delivery at once: the claim (a lease set with FOR UPDATE SKIP
LOCKED, committed before the POST) lets exactly one of them through, on real PostgreSQL."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.models import OutboxEvent
from apps.core.outbox import deliver_events
from apps.events.models import WebhookDelivery
from apps.events.services import deliveries_send
from apps.payments.services import payment_create
from tests.workers import tasks_published_to

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def test_racing_workers_send_a_delivery_once(user, receiver, endpoint_for):
    endpoint, _ = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    receiver.behave("slow", seconds=0.5)
    with tasks_published_to():  # the broker is down: the delivery is written, its send not queued
        payment_create(actor=user, owner=user, amount=500, currency="USD", payment_method="tok_visa")
        deliver_events(event_ids=list(OutboxEvent.objects.values_list("pk", flat=True)))
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    barrier = threading.Barrier(4)
    results = []

    def worker():
        barrier.wait()
        try:
            results.append(deliveries_send(delivery_ids=[delivery.pk]))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.lease_expires_at) == ("succeeded", 1, None)


def test_a_lease_that_ran_out_is_taken_over(user, receiver, endpoint_for):
    endpoint, _ = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    payment_create(actor=user, owner=user, amount=500, currency="USD", payment_method="tok_visa")
    receiver.wait_for(1)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    # a worker claimed it again and died: its lease is live, then runs out
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="pending", next_attempt_at=now, lease_expires_at=now + timezone.timedelta(seconds=60)
    )
    assert deliveries_send(delivery_ids=[delivery.pk]) == []
    WebhookDelivery.objects.filter(pk=delivery.pk).update(lease_expires_at=now)

    [sent] = deliveries_send(delivery_ids=[delivery.pk])

    assert sent.outcome == "succeeded"
    assert len(receiver.wait_for(2)) == 2
