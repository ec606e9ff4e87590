"""A batch of events' emails: one send task, one SMTP connection, each email once; a relay in
trouble mid-batch gets only the unsent ones again."""

from datetime import timedelta

import pytest
from celery.signals import task_prerun
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.core.models import OutboxEvent
from apps.core.tasks import deliver_outbox_events
from apps.notifications.models import Notification
from apps.notifications.services import message_id, notifications_sweep
from apps.notifications.tasks import send_notifications
from apps.wallets.services import wallet_create, wallet_transfer
from apps.wallets.tests.factories import fund

pytestmark = pytest.mark.django_db

TRANSFERS = 4


@pytest.fixture
def transfer_events(django_capture_on_commit_callbacks):
    """TRANSFERS transfers from Ada to Bob whose events are written but not yet handed to a worker;
    returns their event ids (three per transfer), in order."""
    ada = UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    bob = UserFactory(email="bob@example.com", full_name="Bob Babbage")
    source = wallet_create(actor=ada, user=ada, currency="USD")
    destination = wallet_create(actor=bob, user=bob, currency="USD")
    fund(source, 100_000)
    with django_capture_on_commit_callbacks(execute=False):  # the hand-overs to the broker: dropped
        txns = [
            wallet_transfer(
                actor=ada,
                user=ada,
                source_wallet_id=source.pk,
                destination_wallet_id=destination.pk,
                amount=100 + n,
            )
            for n in range(TRANSFERS)
        ]
    events = OutboxEvent.objects.filter(payload__transaction__in=[t.pk for t in txns]).order_by(
        "created_at", "pk"
    )
    return list(events.values_list("pk", flat=True))


@pytest.fixture
def tasks_run():
    """(task name, args) of every task run meanwhile (eagerly, in the tests)."""
    runs = []

    def record(sender, args, **kwargs):
        runs.append((sender.name, list(args)))

    task_prerun.connect(record)
    yield runs
    task_prerun.disconnect(record)


def deliver(ids, capture):
    with capture(execute=True):
        deliver_outbox_events.apply(args=[ids])


def test_a_batch_of_events_emails_go_out_by_one_task_over_one_smtp_connection_each_once(
    smtp_sink, transfer_events, tasks_run, django_capture_on_commit_callbacks
):
    # when: one delivery of the batch of transfers' events
    deliver(transfer_events, django_capture_on_commit_callbacks)

    # then: both parties of each transfer got their email, once, over one connection
    rows = Notification.objects.filter(event__in=transfer_events)
    assert rows.count() == 2 * TRANSFERS
    received = smtp_sink.wait_for(2 * TRANSFERS)
    assert sorted(m["Message-ID"] for m in received) == sorted(
        message_id(pk) for pk in rows.values_list("pk", flat=True)
    )
    assert smtp_sink.connections == 1
    assert set(rows.values_list("status", "attempts")) == {("sent", 1)}
    assert OutboxEvent.objects.filter(
        event_type="notification.sent", aggregate_id__in=rows.values("pk")
    ).count() == (2 * TRANSFERS)
    # ... by the task that delivered the events: no send task of their own (nor one per email)
    assert [name for name, _ in tasks_run if name.startswith("apps.notifications.tasks.")] == []

    # when: the batch is delivered again (a redelivery)
    OutboxEvent.objects.filter(pk__in=transfer_events).update(delivered_at=None)
    deliver(transfer_events, django_capture_on_commit_callbacks)

    # then: nothing more is sent
    assert len(smtp_sink.received()) == 2 * TRANSFERS
    assert Notification.objects.filter(event__in=transfer_events).count() == 2 * TRANSFERS


def test_a_relay_failing_mid_batch_then_recovering_gets_only_the_unsent_again(
    smtp_sink, transfer_events, tasks_run, settings, django_capture_on_commit_callbacks
):
    # given: a relay that takes three emails, then answers "try again later" twice
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0
    smtp_sink.answer_busy(times=2, after=3)

    # when
    deliver(transfer_events, django_capture_on_commit_callbacks)

    # then: the other emails arrived ...
    rows = Notification.objects.filter(event__in=transfer_events)
    assert len(smtp_sink.wait_for(2 * TRANSFERS - 2)) == 2 * TRANSFERS - 2
    # ... the two refused were left due again (no broker countdown) ...
    refused = rows.filter(status="pending")
    assert refused.count() == 2
    assert all(row.next_attempt_at <= timezone.now() for row in refused)

    # when: the sweep finds them due
    with django_capture_on_commit_callbacks(execute=True):
        assert notifications_sweep() == (2, 0)

    # then: every email arrived exactly once ...
    received = smtp_sink.wait_for(2 * TRANSFERS)
    assert len(received) == 2 * TRANSFERS
    assert sorted(m["Message-ID"] for m in received) == sorted(
        message_id(pk) for pk in rows.values_list("pk", flat=True)
    )
    assert set(rows.values_list("status", flat=True)) == {"sent"}
    # ... the two refused were the only ones tried again: a second attempt, by one task of just them
    retried = sorted(rows.filter(attempts=2).values_list("pk", flat=True))
    assert len(retried) == 2
    assert rows.filter(attempts=1).count() == 2 * TRANSFERS - 2
    assert all(
        "SMTPDataError" in error for error in rows.filter(attempts=2).values_list("last_error", flat=True)
    )
    sends = [args[0] for name, args in tasks_run if name == "apps.notifications.tasks.send_notifications"]
    assert [sorted(ids) for ids in sends] == [retried]
    # one connection for the batch, one for its retry
    assert smtp_sink.connections == 2


def test_a_send_task_takes_the_due_emails_queued_behind_it_but_not_one_waiting_for_its_retry(
    smtp_sink, transfer_events, django_capture_on_commit_callbacks
):
    # given: the transfers' emails written but not sent (a backlog of retries whose backoff is
    # over), and one email of an earlier send still waiting out its backoff
    with django_capture_on_commit_callbacks(execute=False):
        deliver_outbox_events.apply(args=[transfer_events])
    rows = Notification.objects.filter(event__in=transfer_events).order_by("pk")
    first, waiting = rows[0], rows[1]
    rows.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    Notification.objects.filter(pk=waiting.pk).update(
        attempts=1, next_attempt_at=timezone.now() + timedelta(hours=1)
    )

    # when: a send task for one email runs
    sent = send_notifications.apply(args=[[first.pk]]).get()

    # then: it sent every due email over its one connection, and not the one waiting
    assert sent == 2 * TRANSFERS - 1
    assert smtp_sink.connections == 1
    assert message_id(waiting.pk) not in {m["Message-ID"] for m in smtp_sink.wait_for(2 * TRANSFERS - 1)}
    assert Notification.objects.get(pk=waiting.pk).status == "pending"
    assert rows.filter(status="sent").count() == 2 * TRANSFERS - 1

    # when: the tasks queued behind it run (for emails it already sent)
    assert send_notifications.apply(args=[[rows[2].pk, rows[3].pk]]).get() == 0

    # then: nothing is sent twice
    assert len(smtp_sink.received()) == 2 * TRANSFERS - 1
    assert set(rows.exclude(pk=waiting.pk).values_list("attempts", flat=True)) == {1}


def test_each_email_of_a_batch_keeps_the_correlation_id_of_its_own_change(
    smtp_sink, transfer_events, django_capture_on_commit_callbacks
):
    # given: the transfers were made by different requests (each its own correlation id)
    events = OutboxEvent.objects.filter(pk__in=transfer_events)
    for n, txn in enumerate(sorted({e.payload["transaction"] for e in events})):
        events.filter(payload__transaction=txn).update(correlation_id=f"req-{n}")

    # when: their events are delivered, and the emails sent, as one batch
    deliver(transfer_events, django_capture_on_commit_callbacks)

    # then: each email, and the event saying it was sent, carries its own change's id
    smtp_sink.wait_for(2 * TRANSFERS)
    rows = Notification.objects.filter(event__in=transfer_events).select_related("event")
    assert {row.correlation_id for row in rows} == {f"req-{n}" for n in range(TRANSFERS)}
    for row in rows:
        assert row.correlation_id == row.event.correlation_id
        sent = OutboxEvent.objects.get(event_type="notification.sent", aggregate_id=row.pk)
        assert (sent.correlation_id, sent.payload["correlation_id"]) == (
            row.correlation_id,
            row.correlation_id,
        )


def test_a_batch_costs_the_worker_as_many_queries_as_one_change(
    transfer_events, django_capture_on_commit_callbacks
):
    """Who the events concern is read once per batch, not once per event: delivering the four
    transfers' events together takes the queries that one transfer's take alone."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_to_deliver(ids):
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
            deliver_outbox_events.apply(args=[ids])
        return len(queries)

    one = queries_to_deliver(transfer_events[:3])  # the first transfer's three events
    rest = queries_to_deliver(transfer_events[3:])  # the other three transfers' nine

    assert Notification.objects.filter(event__in=transfer_events).count() == 2 * TRANSFERS
    assert rest == one
