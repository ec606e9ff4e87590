"""Processing in order: a late success settles a lost answer, an older event never rolls a newer
one back, and an event that contradicts the books goes to a person.

Tasks run eagerly here; payments are made through the services, on the Stripe gateway against
the local Stripe look-alike (fixtures in conftest.py).
"""

import time

import pytest
from django.core.management import call_command

from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.payments.services import payment_create
from apps.payments.tests.factories import sum_of_postings
from apps.webhooks.models import WebhookEvent
from apps.webhooks.tests.factories import received, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)

S = WebhookEvent.Status


# --- late success, failure, ordering ------------------------------------------------------------


def test_late_success_settles_a_payment_whose_answer_was_lost(lost_answer_payment, deliver, auth_client):
    payment, intent = lost_answer_payment

    event = received(deliver.stripe(stripe_event("payment_intent.succeeded", intent)))

    assert event.status == S.PROCESSED
    shown = auth_client.get(f"/api/v1/payments/{payment.pk}").json()
    assert (shown["status"], shown["amount_captured"], shown["gateway_reference"]) == (
        "succeeded",
        5000,
        intent["id"],
    )
    assert sum_of_postings("platform_revenue", "EUR") == 5000
    call_command("reconcile_payments")  # nothing left to settle, nothing doubles
    assert sum_of_postings("platform_revenue", "EUR") == 5000
    audit = AuditLog.objects.filter(entity_id=payment.pk, action="payment.capture").get()
    assert audit.after["webhook_event"] == event.pk


def test_older_failure_arriving_after_a_newer_success_never_rolls_it_back(lost_answer_payment, deliver):
    payment, intent = lost_answer_payment
    now = int(time.time())
    received(deliver.stripe(stripe_event("payment_intent.succeeded", intent, created=now)))
    failed_intent = {
        **intent,
        "status": "requires_payment_method",
        "last_payment_error": {"code": "card_declined"},
    }

    stale = received(
        deliver.stripe(stripe_event("payment_intent.payment_failed", failed_intent, created=now - 60))
    )

    assert stale.status == S.IGNORED
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert sum_of_postings("platform_revenue", "EUR") == 5000


def test_older_success_arriving_after_a_newer_failure_is_ignored_not_dead(lost_answer_payment, deliver):
    payment, intent = lost_answer_payment
    now = int(time.time())
    failed_intent = {
        **intent,
        "last_payment_error": {"code": "card_declined", "decline_code": "expired_card"},
    }
    received(deliver.stripe(stripe_event("payment_intent.payment_failed", failed_intent, created=now)))

    older = received(deliver.stripe(stripe_event("payment_intent.succeeded", intent, created=now - 60)))

    assert older.status == S.IGNORED
    assert older.outcome.startswith("superseded")
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "expired_card")
    assert sum_of_postings("platform_revenue", "EUR") == 0


def test_success_for_a_payment_paydesk_recorded_as_failed_goes_to_a_person(stripe_payment, deliver, user):
    declined = payment_create(
        actor=user, owner=user, amount=900, currency="EUR", payment_method="tok_chargeDeclined"
    )
    assert declined.status == "failed"
    assert declined.gateway_reference
    intent = {
        "id": declined.gateway_reference,
        "object": "payment_intent",
        "amount_received": 900,
        "currency": "eur",
    }

    event = received(deliver.stripe(stripe_event("payment_intent.succeeded", intent)))

    assert event.status == S.DEAD
    assert "recorded as failed" in event.last_error
    assert sum_of_postings("platform_revenue", "EUR") == 0


def test_refund_delivered_before_the_success_waits_then_replay_applies_it(
    lost_answer_payment, dashboard, deliver, settings
):
    payment, intent = lost_answer_payment
    refund = dashboard.refunds.create(params={"payment_intent": intent["id"], "amount": 5000}).to_dict()
    # Nothing names the payment yet: its gateway reference is written when the success is applied.
    early = received(deliver.stripe(stripe_event("refund.created", refund)))
    assert early.status == S.DEAD  # eager retries ran out before the success arrived
    assert early.attempts == settings.WEBHOOK_MAX_ATTEMPTS
    received(deliver.stripe(stripe_event("payment_intent.succeeded", intent)))

    call_command("replay_webhooks", "--id", early.provider_event_id)

    early.refresh_from_db()
    assert early.status == S.PROCESSED
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded) == ("refunded", 5000)
    assert sum_of_postings("platform_revenue", "EUR") == 0


def test_payment_failed_at_the_provider_fails_a_payment_waiting_for_its_outcome(lost_answer_payment, deliver):
    payment, intent = lost_answer_payment
    failed_intent = {
        **intent,
        "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"},
    }

    event = received(deliver.stripe(stripe_event("payment_intent.payment_failed", failed_intent)))

    assert event.status == S.PROCESSED
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "insufficient_funds")
    assert OutboxEvent.objects.filter(event_type="payment.failed", aggregate_id=payment.pk).exists()
