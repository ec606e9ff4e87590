"""Billing passes racing on PostgreSQL with real threads: every period is charged exactly once."""

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection

from apps.accounts.tests.factories import UserFactory
from apps.core.models import OutboxEvent
from apps.gateways.models import SimulatedCharge
from apps.payments.models import Payment
from apps.subscriptions.models import Subscription
from apps.subscriptions.services import subscription_create, subscriptions_bill_due

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
RENEWAL = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)


def run_at_once(works):
    barrier = threading.Barrier(len(works))
    results = [None] * len(works)
    errors = []

    def worker(index):
        try:
            barrier.wait()
            results[index] = works[index]()
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(works))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def subscriptions(count, **fields):
    made = []
    for _ in range(count):
        owner = UserFactory()
        made.append(
            subscription_create(
                actor=owner,
                owner=owner,
                plan_id="pro",
                amount=1500,
                currency="USD",
                billing_cycle="monthly",
                payment_method="tok_visa",
                now=T0,
                **fields,
            )
        )
    return made


def assert_renewed_exactly_once(subs):
    for sub in subs:
        periods = list(
            Payment.objects.filter(subscription_id=sub.pk).values_list("billing_period", flat=True)
        )
        assert sorted(periods) == [T0.isoformat(), RENEWAL.isoformat()], sub.pk
    renewed = Counter(
        OutboxEvent.objects.filter(event_type="subscription.renewed").values_list("aggregate_id", flat=True)
    )
    assert set(renewed.values()) == {2}
    assert SimulatedCharge.objects.count() == 2 * len(subs)
    assert set(Subscription.objects.values_list("current_period_start", flat=True)) == {RENEWAL}


def test_billing_passes_racing_share_the_work_and_charge_each_period_once():
    subs = subscriptions(24)

    summaries = run_at_once(
        [lambda: subscriptions_bill_due(now=RENEWAL + timedelta(minutes=1), batch_size=2) for _ in range(4)]
    )

    charged = [summary.as_dict()["charged"] for summary in summaries]
    assert sum(charged) == 24
    # SKIP LOCKED: the passes took disjoint batches instead of queueing behind one another.
    assert sum(1 for count in charged if count) >= 2, charged
    assert all(summary.as_dict()["error"] == 0 for summary in summaries)
    assert_renewed_exactly_once(subs)


def test_a_pass_that_thinks_the_others_claims_expired_still_charges_each_period_once():
    subs = subscriptions(12)
    # The second pass runs "later" than every lease of the first: it takes over their subscriptions
    # while the first is still charging them, as after a worker that looked dead.
    late = RENEWAL + timedelta(seconds=settings.SUBSCRIPTION_BILLING_LEASE_SECONDS + 1)

    summaries = run_at_once(
        [
            lambda: subscriptions_bill_due(now=RENEWAL, batch_size=12),
            lambda: subscriptions_bill_due(now=late, batch_size=1),
        ]
    )

    assert sum(summary.as_dict()["charged"] for summary in summaries) == 12
    assert_renewed_exactly_once(subs)
