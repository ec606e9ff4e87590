"""The billing engine, stepped through time with `manage.py bill_subscriptions --as-of`."""

from datetime import timedelta

import pytest

from apps.payments.models import Payment
from apps.subscriptions.models import Subscription
from apps.subscriptions.services import subscription_cancel, subscription_update

from .factories import at, events_of, payments_of

pytestmark = pytest.mark.django_db

T0 = at("2026-01-31 12:00")


def test_without_a_trial_the_first_period_is_charged_at_once(subscribe):
    subscription = subscribe(now=T0)

    [payment] = payments_of(subscription.pk)
    assert (payment.status, payment.amount, payment.currency) == ("succeeded", 1500, "USD")
    assert payment.billing_period == "2026-01-31T12:00:00+00:00"
    assert subscription.status == "active"
    assert (subscription.current_period_start, subscription.current_period_end) == (
        T0,
        at("2026-02-28 12:00"),
    )
    assert subscription.next_billing_date == at("2026-02-28 12:00")
    assert subscription.latest_payment_id == payment.pk
    assert events_of(subscription.pk) == ["subscription.created", "subscription.renewed"]


def test_a_trial_charges_nothing_until_it_ends_then_the_first_period(subscribe, bill):
    subscription = subscribe(now=T0, trial_days=14)
    trial_end = T0 + timedelta(days=14)
    assert subscription.status == "trialing"
    assert subscription.trial_end_date == trial_end
    assert subscription.next_billing_date == trial_end
    assert payments_of(subscription.pk) == []

    bill(trial_end - timedelta(seconds=1))
    assert payments_of(subscription.pk) == []

    out = bill(trial_end)
    assert "charged 1, failed 0, skipped 0" in out
    subscription.refresh_from_db()
    [payment] = payments_of(subscription.pk)
    assert payment.status == "succeeded"
    assert payment.billing_period == trial_end.isoformat()
    assert subscription.status == "active"
    assert subscription.current_period_start == trial_end
    assert subscription.current_period_end == at("2026-03-14 12:00")


def test_a_year_of_monthly_billing_charges_exactly_twelve_times_on_each_month_end(
    subscribe, bill, auth_client
):
    subscription = subscribe(now=T0)
    moment = T0
    # Twice a month, each pass run twice: only the passes at a period end charge anything.
    while moment < at("2027-01-31 12:00"):
        bill(moment)
        bill(moment)
        moment += timedelta(days=15)

    payments = payments_of(subscription.pk)
    assert len(payments) == 12
    assert all(p.status == "succeeded" and p.amount == 1500 for p in payments)
    assert [p.billing_period[:10] for p in payments] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
        "2026-06-30",
        "2026-07-31",
        "2026-08-31",
        "2026-09-30",
        "2026-10-31",
        "2026-11-30",
        "2026-12-31",
    ]
    subscription.refresh_from_db()
    assert subscription.current_period_end == at("2027-01-31 12:00")
    listed = auth_client.get(f"/api/v1/payments?subscription={subscription.pk}&limit=100").json()["data"]
    assert len(listed) == 12
    assert {p["subscription"] for p in listed} == {subscription.pk}


def test_a_pass_long_after_the_due_date_charges_each_missed_period_once(subscribe, bill):
    subscription = subscribe(now=T0, billing_cycle="daily")

    out = bill(T0 + timedelta(days=5, hours=1))
    bill(T0 + timedelta(days=5, hours=1))

    assert "charged 5," in out
    assert [p.billing_period[:10] for p in payments_of(subscription.pk)] == [
        "2026-01-31",
        "2026-02-01",
        "2026-02-02",
        "2026-02-03",
        "2026-02-04",
        "2026-02-05",
    ]


def test_month_ends_follow_the_anchor_day_in_a_leap_year(subscribe, bill):
    subscription = subscribe(now=at("2028-01-31 08:00"))
    ends = [subscription.current_period_end]
    for _ in range(3):
        bill(subscription.current_period_end)
        subscription.refresh_from_db()
        ends.append(subscription.current_period_end)
    assert [end.date().isoformat() for end in ends] == [
        "2028-02-29",
        "2028-03-31",
        "2028-04-30",
        "2028-05-31",
    ]


def test_a_declined_renewal_walks_the_dunning_schedule_to_unpaid(subscribe, bill, user):
    subscription = subscribe(now=T0)
    subscription_update(
        actor=user, owner=user, subscription_id=subscription.pk, payment_method="tok_chargeDeclined"
    )
    due = at("2026-02-28 12:00")

    bill(due)
    subscription.refresh_from_db()
    assert subscription.status == "past_due"
    assert subscription.next_billing_date == due + timedelta(days=1)
    # The paid period stays the current one while the next is being collected.
    assert subscription.current_period_end == due

    retry_at = due + timedelta(days=1)
    bill(retry_at - timedelta(seconds=1))
    assert len(payments_of(subscription.pk)) == 2  # the first and the declined renewal only
    for gap in (3, 5):
        bill(retry_at)
        subscription.refresh_from_db()
        assert subscription.status == "past_due"
        assert subscription.next_billing_date == retry_at + timedelta(days=gap)
        retry_at += timedelta(days=gap)
    out = bill(retry_at)
    assert "charged 0, failed 1" in out

    subscription.refresh_from_db()
    assert subscription.status == "unpaid"
    assert subscription.next_billing_date is None
    declined = payments_of(subscription.pk)[1:]
    assert [(p.status, p.failure_code) for p in declined] == [("failed", "card_declined")] * 4
    assert [p.billing_period for p in declined] == [
        "2026-02-28T12:00:00+00:00",
        "2026-02-28T12:00:00+00:00#retry1",
        "2026-02-28T12:00:00+00:00#retry2",
        "2026-02-28T12:00:00+00:00#retry3",
    ]
    assert events_of(subscription.pk) == [
        "subscription.created",
        "subscription.renewed",
        "subscription.updated",
        "subscription.updated",  # the new payment method applied to the renewal
        "subscription.payment_failed",
        "subscription.past_due",
        "subscription.payment_failed",
        "subscription.payment_failed",
        "subscription.payment_failed",
        "subscription.unpaid",
    ]
    bill(retry_at + timedelta(days=60))
    assert len(payments_of(subscription.pk)) == 5


def test_the_final_failure_cancels_when_so_configured(subscribe, bill, settings):
    settings.SUBSCRIPTION_DUNNING_DAYS = [2]
    settings.SUBSCRIPTION_FINAL_STATUS = "canceled"
    subscription = subscribe(now=T0, payment_method="tok_chargeDeclinedInsufficientFunds")
    assert subscription.status == "past_due"

    bill(T0 + timedelta(days=2))

    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert subscription.canceled_at == T0 + timedelta(days=2)
    assert events_of(subscription.pk)[-2:] == ["subscription.payment_failed", "subscription.canceled"]
    payment = payments_of(subscription.pk)[-1]
    from apps.core.models import OutboxEvent

    canceled = OutboxEvent.objects.get(aggregate_id=subscription.pk, event_type="subscription.canceled")
    assert canceled.payload["reason"] == "payment_failed"
    assert canceled.payload["payment"] == payment.pk
    assert canceled.payload["failure_code"] == "insufficient_funds"
    assert canceled.payload["attempts_left"] == 0


def test_a_new_card_during_dunning_is_used_by_the_next_retry(subscribe, bill, user):
    subscription = subscribe(now=T0, payment_method="tok_chargeDeclined")
    assert subscription.status == "past_due"
    assert subscription.current_period_start is None

    subscription_update(actor=user, owner=user, subscription_id=subscription.pk, payment_method="tok_visa")
    bill(T0 + timedelta(days=1))

    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert subscription.payment_method == "tok_visa"
    # The period collected late is still the one that began at T0; the anchor day is kept.
    assert (subscription.current_period_start, subscription.current_period_end) == (
        T0,
        at("2026-02-28 12:00"),
    )
    assert [p.status for p in payments_of(subscription.pk)] == ["failed", "succeeded"]


def test_cancel_at_period_end_stops_the_next_charge(subscribe, bill, user):
    subscription = subscribe(now=T0)
    subscription = subscription_cancel(
        actor=user,
        owner=user,
        subscription_id=subscription.pk,
        at_period_end=True,
        now=T0 + timedelta(days=3),
    )
    assert (subscription.status, subscription.cancel_at_period_end) == ("active", True)
    assert subscription.next_billing_date is None
    assert subscription.canceled_at is None

    out = bill(at("2026-02-28 12:00"))
    bill(at("2026-04-30 12:00"))

    assert "ended at period end 1" in out
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert subscription.canceled_at == at("2026-02-28 12:00")
    assert len(payments_of(subscription.pk)) == 1
    assert events_of(subscription.pk)[-1] == "subscription.canceled"


def test_cancel_now_ends_it_at_once_and_a_second_cancel_changes_nothing(subscribe, bill, user):
    subscription = subscribe(now=T0)
    subscription_cancel(actor=user, owner=user, subscription_id=subscription.pk, now=T0 + timedelta(days=2))
    again = subscription_cancel(
        actor=user, owner=user, subscription_id=subscription.pk, now=T0 + timedelta(days=9)
    )

    assert again.status == "canceled"
    assert again.canceled_at == T0 + timedelta(days=2)
    bill(at("2026-03-31 12:00"))
    assert len(payments_of(subscription.pk)) == 1
    assert events_of(subscription.pk).count("subscription.canceled") == 1


def test_updates_apply_from_the_next_period(subscribe, bill, user):
    subscription = subscribe(now=T0)
    updated = subscription_update(
        actor=user,
        owner=user,
        subscription_id=subscription.pk,
        amount=4200,
        billing_cycle="yearly",
        plan_id="team",
    )
    # Nothing changes for the period already paid.
    assert (updated.amount, updated.billing_cycle, updated.plan_id) == (1500, "monthly", "pro")
    assert (updated.pending_amount, updated.pending_billing_cycle, updated.pending_plan_id) == (
        4200,
        "yearly",
        "team",
    )
    assert updated.next_billing_date == at("2026-02-28 12:00")

    bill(at("2026-02-28 12:00"))

    subscription.refresh_from_db()
    renewal = payments_of(subscription.pk)[-1]
    assert renewal.amount == 4200
    assert renewal.metadata["plan_id"] == "team"
    assert (subscription.amount, subscription.billing_cycle, subscription.plan_id) == (4200, "yearly", "team")
    assert not subscription.has_pending_update
    assert (subscription.current_period_start, subscription.current_period_end) == (
        at("2026-02-28 12:00"),
        at("2027-02-28 12:00"),
    )
    bill(at("2027-02-28 11:59"))
    assert len(payments_of(subscription.pk)) == 2


def test_asking_for_the_current_value_again_withdraws_a_pending_change(subscribe, user):
    subscription = subscribe(now=T0)
    subscription_update(actor=user, owner=user, subscription_id=subscription.pk, amount=9900)
    updated = subscription_update(actor=user, owner=user, subscription_id=subscription.pk, amount=1500)
    assert updated.pending_amount is None
    assert not updated.has_pending_update


def test_a_wallet_subscription_pays_from_the_wallet_and_fails_when_it_runs_dry(
    subscribe, bill, funded_wallet
):
    wallet = funded_wallet(2000)
    subscription = subscribe(now=T0, payment_method=f"wallet:{wallet.pk}")
    wallet.refresh_from_db()
    assert wallet.balance == 500
    first = subscription.latest_payment_id

    bill(at("2026-02-28 12:00"))

    subscription.refresh_from_db()
    assert subscription.status == "past_due"
    # The wallet refused before any payment was made: no second payment, nothing moved.
    assert len(payments_of(subscription.pk)) == 1
    assert subscription.latest_payment_id == first
    wallet.refresh_from_db()
    assert wallet.balance == 500
    from apps.core.models import OutboxEvent

    failed = OutboxEvent.objects.get(aggregate_id=subscription.pk, event_type="subscription.payment_failed")
    assert failed.payload["failure_code"] == "insufficient_funds"
    assert failed.payload["payment"] is None
    assert failed.payload["period_start"] == "2026-02-28T12:00:00Z"


def test_nothing_is_billed_before_it_is_due(subscribe, bill):
    subscription = subscribe(now=T0)
    out = bill(at("2026-02-28 11:59"))
    assert "charged 0, failed 0, skipped 0" in out
    assert Payment.objects.filter(subscription_id=subscription.pk).count() == 1
    assert Subscription.objects.get(pk=subscription.pk).current_period_end == at("2026-02-28 12:00")
