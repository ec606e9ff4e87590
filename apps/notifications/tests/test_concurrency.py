"""Many workers handed the same email at once (redelivery, sweep, replay): it goes out once."""

import threading

import pytest
from django.db import connection

from apps.accounts.tests.factories import UserFactory
from apps.core.models import OutboxEvent
from apps.notifications.models import Notification
from apps.notifications.services import notification_send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

WORKERS = 8


def test_concurrent_sends_of_one_notification_deliver_one_email(smtp_sink):
    # given: one pending email (written directly: no send queued)
    user = UserFactory(email="ada@example.com", full_name="Ada")
    event = OutboxEvent.objects.create(
        event_type="user.registered", aggregate_type="user", aggregate_id=user.pk
    )
    notification = Notification.objects.create(
        user=user, event=event, template="welcome", to=user.email, subject="Welcome to Paydesk"
    )
    barrier = threading.Barrier(WORKERS)
    outcomes, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            outcomes.append(notification_send(notification_id=notification.pk).notification.status)
        except Exception as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)
        finally:
            connection.close()

    # when: eight workers send it at the same moment
    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then: one email, one attempt; the others saw it claimed or sent and did nothing
    assert errors == []
    assert len(outcomes) == WORKERS
    assert [m["To"] for m in smtp_sink.wait_for(1)] == ["ada@example.com"]
    assert len(smtp_sink.received()) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)
    assert (
        OutboxEvent.objects.filter(event_type="notification.sent", aggregate_id=notification.pk).count() == 1
    )
