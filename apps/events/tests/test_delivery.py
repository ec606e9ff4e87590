"""Deliveries to a real HTTP receiver on 127.0.0.1 (tests/fakes/webhook_receiver.py): signed as
Stripe signs, retried on the database's schedule, every misbehaviour of a receiver a clean failed
attempt within the deadline. Tasks run eagerly; the sweep is run by hand where beat would run it."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
import stripe
from django.utils import timezone

from apps.core.models import OutboxEvent
from apps.events.models import Event, WebhookDelivery
from apps.events.services import deliveries_sweep, webhook_endpoint_rotate_secret
from apps.payments.services import payment_create
from apps.wallets.services import wallet_create, wallet_transfer
from apps.wallets.tests.factories import fund

pytestmark = pytest.mark.django_db(transaction=True)


def pay(user, amount=1_500):
    return payment_create(actor=user, owner=user, amount=amount, currency="USD", payment_method="tok_visa")


def verify_by_hand(header: str, body: bytes, secret: str) -> bool:
    parts = [item.split("=", 1) for item in header.split(",")]
    timestamp = next(value for key, value in parts if key == "t")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(key == "v1" and hmac.compare_digest(value, expected) for key, value in parts)


def make_due(delivery_ids=None):
    """Time passes: every scheduled retry is due now (as beat's sweep would find it later)."""
    pending = WebhookDelivery.objects.filter(status="pending")
    if delivery_ids:
        pending = pending.filter(pk__in=delivery_ids)
    pending.update(next_attempt_at=timezone.now())


def test_a_delivery_is_the_event_object_signed_with_the_endpoints_secret(user, receiver, endpoint_for):
    endpoint, secret = endpoint_for(user, receiver.url, events=["payment.succeeded"])

    payment = pay(user)

    [request] = receiver.wait_for(1)
    body = json.loads(request.body)
    event = Event.objects.get(user=user, type="payment.succeeded")
    assert body == {
        "id": event.pk,
        "object": "event",
        "type": "payment.succeeded",
        "created_at": body["created_at"],
        "data": {"object": body["data"]["object"]},
        "request": {"correlation_id": None, "idempotency_key": None},
    }
    assert body["data"]["object"]["id"] == payment.pk
    assert body["data"]["object"]["status"] == "succeeded"
    assert request.headers["Content-Type"] == "application/json"
    header = request.headers["Paydesk-Signature"]
    assert header.startswith("t=")
    assert header.count("v1=") == 1
    assert verify_by_hand(header, request.body, secret)
    assert not verify_by_hand(header, request.body, "whsec_wrong")
    # Stripe's own verifier accepts it (and refuses a changed body)
    assert stripe.WebhookSignature.verify_header(request.body.decode(), header, secret, tolerance=300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(request.body.decode() + " ", header, secret, tolerance=300)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.next_attempt_at) == (
        "succeeded",
        1,
        200,
        None,
    )
    assert delivery.attempt_log.get().latency_ms >= 0


def test_a_receiver_that_fails_gets_a_retry_on_the_schedule_and_then_the_event_once(
    user, receiver, endpoint_for, settings
):
    settings.OUTBOUND_WEBHOOK_RETRY_BASE_SECONDS = 60
    endpoint, _ = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    receiver.behave("fail", status=503)

    pay(user)

    receiver.wait_for(1)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 503)
    assert delivery.last_error == "answered 503"
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 60 <= wait <= 120 + 1  # the base, plus full jitter up to the base for the first retry
    # not due yet: the sweep leaves it
    assert deliveries_sweep() == 0
    assert len(receiver.requests) == 1

    # when: the receiver recovers and the retry is due
    receiver.behave("ok")
    make_due()
    assert deliveries_sweep() == 1

    # then: delivered, with the same event (same id) as the first attempt
    first, second = receiver.wait_for(2)
    assert json.loads(first.body)["id"] == json.loads(second.body)["id"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "succeeded",
        2,
        200,
        "",
    )
    assert list(delivery.attempt_log.order_by("number").values_list("status_code", "succeeded")) == [
        (503, False),
        (200, True),
    ]
    assert deliveries_sweep() == 0


def test_after_its_window_a_delivery_is_failed_and_never_tried_again(user, receiver, endpoint_for):
    endpoint, _ = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    receiver.behave("fail", status=500)
    pay(user)
    receiver.wait_for(1)

    # when: three days later, the last retry fails too
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(days=3, seconds=1))
    make_due()
    deliveries_sweep()

    receiver.wait_for(2)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)
    make_due()
    assert deliveries_sweep() == 0


@pytest.mark.parametrize(
    ("mode", "options", "error"),
    [
        ("hang", {"seconds": 30}, "timed out after 1.5 s"),
        ("trickle", {"seconds": 30}, "timed out after 1.5 s"),
        ("reset", {}, "connection reset by the receiver"),
        ("redirect", {"status": 302}, "answered 302: redirects are not followed"),
        ("redirect", {"status": 307}, "answered 307: redirects are not followed"),
        ("huge", {}, "answered 200 with a body over 65536 bytes"),
        ("slow", {"seconds": 3}, "timed out after 1.5 s"),
    ],
)
def test_a_misbehaving_receiver_is_a_failed_attempt_within_the_deadline(
    user, receiver, endpoint_for, settings, mode, options, error
):
    settings.OUTBOUND_WEBHOOK_TIMEOUT_SECONDS = 1.5
    endpoint, _ = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    receiver.behave(mode, **options)

    started = time.monotonic()
    pay(user)
    elapsed = time.monotonic() - started

    assert elapsed < 1.5 + 2.5, f"the payment's events took {elapsed:.1f} s to hand over"
    receiver.wait_for(1)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "pending"
    assert delivery.attempts == 1
    assert delivery.last_error.startswith(error), delivery.last_error
    assert delivery.next_attempt_at > timezone.now()
    [attempt] = delivery.attempt_log.all()
    assert not attempt.succeeded
    assert attempt.latency_ms < 3_000
    if mode == "redirect":
        assert len(receiver.requests) == 1  # the Location was not followed
    if mode == "huge":
        assert receiver.cut_short  # the 10 MB were not read


def test_a_connection_refused_is_a_failed_attempt(user, private_urls, endpoint_for):
    endpoint, _ = endpoint_for(user, "http://127.0.0.1:9/hooks", events=["payment.succeeded"])

    pay(user)

    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "connection refused")


def test_after_a_rotation_deliveries_carry_both_signatures_for_a_day(user, receiver, endpoint_for):
    endpoint, old = endpoint_for(user, receiver.url, events=["payment.succeeded"])
    new = webhook_endpoint_rotate_secret(actor=user, user=user, endpoint_id=endpoint.pk).secret

    pay(user)
    [request] = receiver.wait_for(1)
    header = request.headers["Paydesk-Signature"]
    assert header.count("v1=") == 2
    for secret in (old, new):
        assert verify_by_hand(header, request.body, secret)
        stripe.WebhookSignature.verify_header(request.body.decode(), header, secret, tolerance=300)

    # a day later only the new secret signs
    type(endpoint).objects.filter(pk=endpoint.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    pay(user)
    later = receiver.wait_for(2)[1].headers["Paydesk-Signature"]
    assert later.count("v1=") == 1
    assert verify_by_hand(later, receiver.requests[1].body, new)
    assert not verify_by_hand(later, receiver.requests[1].body, old)


def test_a_transfer_reaches_both_parties_each_with_an_event_of_their_own(
    user, other_user, receiver, endpoint_for
):
    source = wallet_create(actor=user, user=user, currency="USD")
    destination = wallet_create(actor=other_user, user=other_user, currency="USD")
    fund(source, 10_000)
    mine, _ = endpoint_for(user, receiver.url, events=["transaction.completed"])
    theirs, _ = endpoint_for(other_user, receiver.url, events=["transaction.completed"])

    txn = wallet_transfer(
        actor=user, user=user, source_wallet_id=source.pk, destination_wallet_id=destination.pk, amount=700
    )

    requests = receiver.wait_for(2)
    bodies = {json.loads(r.body)["id"]: json.loads(r.body) for r in requests}
    events = {
        e.user_id: e for e in Event.objects.filter(type="transaction.completed", data__object__id=txn.pk)
    }
    assert set(events) == {user.pk, other_user.pk}
    assert set(bodies) == {events[user.pk].pk, events[other_user.pk].pk}
    for body in bodies.values():
        assert body["data"]["object"]["id"] == txn.pk
        assert body["data"]["object"]["amount"] == 700
    assert {WebhookDelivery.objects.get(event=events[user.pk]).endpoint_id} == {mine.pk}
    assert {WebhookDelivery.objects.get(event=events[other_user.pk]).endpoint_id} == {theirs.pk}


def test_no_delivery_for_unsubscribed_types_disabled_endpoints_or_hidden_events(user, receiver, endpoint_for):
    endpoint_for(user, receiver.url, events=["subscription.renewed"])
    disabled, _ = endpoint_for(user, receiver.url)
    type(disabled).objects.filter(pk=disabled.pk).update(status="disabled")

    pay(user)

    assert Event.objects.filter(user=user).count() == 2  # payment.created, payment.succeeded
    assert not WebhookDelivery.objects.exists()
    assert not receiver.requests
    exchanges = OutboxEvent.objects.filter(event_type="payment.gateway_exchange")
    assert exchanges.exists()
    assert not Event.objects.filter(source_event_id__in=exchanges.values("pk")).exists()
