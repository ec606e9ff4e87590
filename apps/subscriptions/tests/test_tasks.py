"""The beat task starts billing passes that bill what is due (tasks run eagerly here)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.subscriptions.tasks import bill_subscriptions

from .factories import payments_of

pytestmark = pytest.mark.django_db


def test_the_beat_task_bills_every_due_subscription_once(subscribe, settings):
    settings.SUBSCRIPTION_BILLING_PASSES = 3
    yesterday = timezone.now() - timedelta(days=1, minutes=1)
    due = [subscribe(now=yesterday, billing_cycle="daily") for _ in range(3)]
    later = subscribe(now=yesterday, billing_cycle="weekly")

    assert bill_subscriptions.apply().get() == 3

    assert [len(payments_of(s.pk)) for s in due] == [2, 2, 2]
    assert len(payments_of(later.pk)) == 1


def test_the_beat_schedule_runs_billing_every_interval(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["bill-subscriptions"]
    assert entry["task"] == "apps.subscriptions.tasks.bill_subscriptions"
    assert entry["schedule"] == settings.SUBSCRIPTION_BILLING_INTERVAL_SECONDS
