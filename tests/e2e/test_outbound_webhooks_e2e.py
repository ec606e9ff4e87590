"""Outbound webhooks through real processes: a `celery -A config worker` on RabbitMQ makes the
public events and sends them to a merchant's endpoint (tests/fakes/webhook_receiver.py, an HTTP
server in this process on 127.0.0.1). While the broker is unreachable, payments still commit and
their events wait; once it is back the sweeps hand everything over and each event arrives once."""

import json
import time
from datetime import timedelta

import pytest
import stripe
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.core.models import OutboxEvent
from apps.core.outbox import deliver_events, sweep_outbox
from apps.events.models import Event, WebhookDelivery
from apps.events.services import deliveries_sweep, webhook_endpoint_create
from apps.payments.services import payment_create
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.workers import tasks_published_to

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def worker_env():
    return {"WEBHOOK_ALLOW_PRIVATE_URLS": "true"}


def test_events_made_while_the_broker_is_down_reach_the_endpoint_once_it_is_back(
    celery_worker_process, receiver, wait_for
):
    log = celery_worker_process.log_path
    ada = UserFactory()
    endpoint = webhook_endpoint_create(
        actor=ada, user=ada, url=receiver.url, enabled_events=["payment.succeeded"]
    )

    # when: the broker is unreachable while two payments are made ...
    with tasks_published_to():
        first = payment_create(actor=ada, owner=ada, amount=1_000, currency="USD", payment_method="tok_visa")
        # ... and while the worker's side of a third has made its events (their send not queued)
        third = payment_create(actor=ada, owner=ada, amount=3_000, currency="USD", payment_method="tok_visa")
        third_events = list(OutboxEvent.objects.filter(aggregate_id=third.pk).values_list("pk", flat=True))
        deliver_events(event_ids=third_events)

    # then: the money moved, nothing was sent
    assert first.status == "succeeded"
    assert receiver.requests == []
    assert WebhookDelivery.objects.filter(status="pending", attempts=0).count() == 1

    # when: the broker is back and beat's sweeps run
    assert sweep_outbox(older_than=timedelta(0)) >= 2
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(minutes=1))  # past the grace
    assert deliveries_sweep() >= 1

    # then: each payment's event arrives once, signed
    wait_for(lambda: len(receiver.requests) >= 2, timeout=60, what="both deliveries", log=log)
    time.sleep(1)  # room for a duplicate (none may come)
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert sorted(b["data"]["object"]["id"] for b in bodies) == sorted([first.pk, third.pk])
    assert len({b["id"] for b in bodies}) == 2
    for request in receiver.requests:
        stripe.WebhookSignature.verify_header(
            request.body.decode(), request.headers["Paydesk-Signature"], endpoint.secret, tolerance=300
        )
    wait_for(
        lambda: set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"},
        timeout=30,
        what="the deliveries recorded",
        log=log,
    )
    assert Event.objects.filter(user=ada, type="payment.succeeded").count() == 2
