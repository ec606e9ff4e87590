"""The billing engine and its charges' own lives: a worker that died mid-charge, a charge held for
review, a success arriving after the subscription was canceled or long after the period was
served (stepped through time with `manage.py bill_subscriptions --as-of`)."""

from datetime import timedelta

import pytest

from apps.gateways.models import SimulatedCharge
from apps.payments.services import payment_create
from apps.subscriptions.services import subscription_cancel

from .factories import at, payments_of

pytestmark = pytest.mark.django_db

T0 = at("2026-01-31 12:00")


def test_a_period_charged_by_a_worker_that_died_before_settling_is_not_charged_again(subscribe, bill, user):
    subscription = subscribe(now=T0)
    # As if a worker charged the renewal, then died before writing it down.
    orphan = payment_create(
        actor=None,
        owner=user,
        amount=1500,
        currency="USD",
        payment_method="tok_visa",
        subscription_id=subscription.pk,
        billing_period="2026-02-28T12:00:00+00:00",
    )
    charges = SimulatedCharge.objects.count()

    bill(at("2026-02-28 12:00"))
    bill(at("2026-02-28 12:00"))

    subscription.refresh_from_db()
    assert subscription.latest_payment_id == orphan.pk
    assert subscription.current_period_end == at("2026-03-31 12:00")
    assert SimulatedCharge.objects.count() == charges
    assert len(payments_of(subscription.pk)) == 2


def test_a_charge_held_for_review_keeps_the_period_waiting_until_it_is_decided(
    subscribe, bill, staff_reviewer
):
    from apps.payments.services import review_decide

    subscription = subscribe(now=T0, payment_method="tok_riskLevelElevated")
    [payment] = payments_of(subscription.pk)
    assert payment.status == "in_review"
    assert subscription.status == "active"
    assert subscription.current_period_start is None

    out = bill(T0 + timedelta(hours=1))
    assert "payment still in flight 1" in out
    review_decide(actor=staff_reviewer, payment_id=payment.pk, decision="approve", note="known customer")
    bill(T0 + timedelta(hours=2))

    subscription.refresh_from_db()
    assert [p.status for p in payments_of(subscription.pk)] == ["succeeded"]
    assert (subscription.current_period_start, subscription.current_period_end) == (
        T0,
        at("2026-02-28 12:00"),
    )


def test_a_charge_that_succeeds_after_the_subscription_was_canceled_is_refunded(
    subscribe, user, staff_reviewer, django_capture_on_commit_callbacks
):
    from apps.payments.services import review_decide

    subscription = subscribe(now=T0, payment_method="tok_riskLevelElevated")
    subscription_cancel(
        actor=user, owner=user, subscription_id=subscription.pk, now=T0 + timedelta(minutes=5)
    )
    [payment] = payments_of(subscription.pk)

    with django_capture_on_commit_callbacks(execute=True):
        review_decide(actor=staff_reviewer, payment_id=payment.pk, decision="approve", note="looks fine")

    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert payment.amount_refunded == 1500


def test_a_late_delivered_event_never_refunds_a_period_that_was_served(subscribe, bill, user):
    from apps.core.models import OutboxEvent
    from apps.core.outbox import deliver_event

    subscription = subscribe(now=T0)
    bill(at("2026-02-28 12:00"))
    subscription_cancel(actor=user, owner=user, subscription_id=subscription.pk, now=at("2026-03-01 12:00"))

    # The payments' events were never delivered (no commit in this test): deliver them now.
    for event_id in OutboxEvent.objects.filter(event_type="payment.succeeded").values_list("pk", flat=True):
        deliver_event(event_id=event_id)

    assert {p.status for p in payments_of(subscription.pk)} == {"succeeded"}
