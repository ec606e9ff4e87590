"""The transactional outbox: an event exists iff its change committed, and is consumed once."""

import threading
import uuid
from datetime import timedelta

import pytest
from celery.signals import task_prerun
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.core import correlation, outbox
from apps.core.models import ConsumedEvent, OutboxEvent
from config.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def event_type():
    return f"test.outbox.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def seen(event_type):
    """A consumer of `event_type` that records each event id it is given."""
    calls: list[str] = []
    lock = threading.Lock()

    @outbox.consumer(event_type, name=f"recorder-{event_type}")
    def _record(event):
        with lock:
            calls.append(event.id)

    yield calls
    outbox._consumers.pop(event_type, None)


def _emit(event_type, payload=None):
    with transaction.atomic():
        # Any saved row will do as the aggregate; a ConsumedEvent-free OutboxEvent is simplest.
        anchor = OutboxEvent.objects.create(event_type="anchor", aggregate_type="x", aggregate_id="1")
        return outbox.emit_event(event_type=event_type, aggregate=anchor, payload=payload or {})


def test_committed_event_is_delivered_once(event_type, seen):
    event = _emit(event_type, {"amount": 5})
    event.refresh_from_db()
    assert seen == [event.id]
    assert event.delivered_at is not None
    assert event.payload == {"amount": 5}


def test_event_of_a_rolled_back_transaction_is_never_dispatched(event_type, seen):
    def failing_change():
        with transaction.atomic():
            anchor = OutboxEvent.objects.create(event_type="anchor", aggregate_type="x", aggregate_id="1")
            outbox.emit_event(event_type=event_type, aggregate=anchor, payload={})
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert not OutboxEvent.objects.filter(event_type=event_type).exists()
    assert outbox.sweep_outbox(older_than=timedelta(0)) == 0
    assert seen == []


def test_emit_outside_a_transaction_is_refused(event_type):
    anchor = OutboxEvent.objects.create(event_type="anchor", aggregate_type="x", aggregate_id="1")
    with pytest.raises(RuntimeError, match="inside the transaction"):
        outbox.emit_event(event_type=event_type, aggregate=anchor, payload={})


def test_event_whose_dispatch_failed_is_delivered_by_the_sweep(event_type, seen, broker_down):
    event = _emit(event_type)
    event.refresh_from_db()
    assert seen == []
    assert event.delivered_at is None
    assert event.published_at is None
    assert event.publish_attempts == 1

    # Not yet due: the sweep leaves fresh events to their first hand-off.
    assert outbox.undelivered_events() == []

    celery_app.conf.task_always_eager = True  # the broker is back
    assert outbox.sweep_outbox(older_than=timedelta(0)) >= 1
    event.refresh_from_db()
    assert seen == [event.id]
    assert event.delivered_at is not None


def test_redelivered_event_is_consumed_once(event_type, seen):
    event = _emit(event_type)
    OutboxEvent.objects.filter(pk=event.pk).update(delivered_at=None)  # as if the ack was lost
    assert outbox.deliver_event(event_id=event.id) == []
    assert seen == [event.id]
    assert ConsumedEvent.objects.filter(event=event).count() == 1


def test_racing_deliveries_of_one_event_consume_it_once(event_type, seen, broker_down):
    event = _emit(event_type)
    barrier = threading.Barrier(6)

    def deliver():
        try:
            barrier.wait()
            outbox.deliver_event(event_id=event.id)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [event.id]


def test_a_failing_consumer_is_retried_without_rerunning_the_others(event_type, seen):
    attempts = []

    @outbox.consumer(event_type, name=f"flaky-{event_type}")
    def _flaky(event):
        attempts.append(event.id)
        if len(attempts) == 1:
            raise ConnectionError("mail server away")

    event = _emit(event_type)  # eager delivery: the flaky consumer fails once, the task retries
    event.refresh_from_db()
    assert event.delivered_at is not None
    assert len(attempts) == 2
    assert seen == [event.id]


def test_event_carries_the_correlation_id_of_its_cause(event_type):
    token = correlation.set_correlation_id("trace-outbox-1")
    try:
        event = _emit(event_type)
    finally:
        correlation.reset_correlation_id(token)
    assert event.correlation_id == "trace-outbox-1"


def test_the_events_of_one_change_go_out_as_one_task_and_arrive_in_order(event_type, seen):
    tasks_run = []

    def record(sender, args, **kwargs):
        tasks_run.append((sender.name, list(args)))

    task_prerun.connect(record)
    try:
        with transaction.atomic():
            anchor = OutboxEvent.objects.create(event_type="anchor", aggregate_type="x", aggregate_id="1")
            emitted = outbox.emit_events(events=[(event_type, anchor, {"n": n}) for n in range(3)])
    finally:
        task_prerun.disconnect(record)
    ids = [event.id for event in emitted]
    assert tasks_run == [("apps.core.tasks.deliver_outbox_events", [ids])]
    assert seen == ids


def test_a_retry_delivers_only_the_events_whose_consumer_failed(event_type, seen):
    failing_once = {"n": 1}
    attempts = []

    @outbox.consumer(event_type, name=f"picky-{event_type}")
    def _picky(event):
        attempts.append(event.payload["n"])
        if event.payload == failing_once and attempts.count(1) == 1:
            raise ConnectionError("mail server away")

    with transaction.atomic():
        anchor = OutboxEvent.objects.create(event_type="anchor", aggregate_type="x", aggregate_id="1")
        emitted = outbox.emit_events(events=[(event_type, anchor, {"n": n}) for n in range(3)])

    assert attempts == [0, 1, 2, 1]
    assert seen == [event.id for event in emitted]  # the other consumer ran once per event
    assert not OutboxEvent.objects.filter(pk__in=[e.id for e in emitted], delivered_at__isnull=True).exists()


def test_a_consumer_owning_its_transactions_commits_its_own_work_and_is_recorded_once_it_returned(
    event_type, seen, broker_down
):
    ran = []

    @outbox.consumer(event_type, name=f"owner-{event_type}", owns_transactions=True)
    def _owner(event):
        # Outside any transaction: a durable one of its own (a payment step's) can be opened.
        with transaction.atomic(durable=True):
            ran.append(event.id)
        if len(ran) == 1:
            raise ConnectionError("the process dies right after the work committed")

    event = _emit(event_type)  # the broker is down: delivered by hand below

    # when: the first delivery's consumer commits its work, then fails before it is recorded
    assert outbox.deliver_event(event_id=event.id) == [f"owner-{event_type}"]
    assert not ConsumedEvent.objects.filter(event=event, consumer=f"owner-{event_type}").exists()

    # then: the redelivery runs it again (it must be idempotent), and later ones no more
    assert outbox.deliver_event(event_id=event.id) == []
    OutboxEvent.objects.filter(pk=event.pk).update(delivered_at=None)  # as if the ack was lost
    assert outbox.deliver_event(event_id=event.id) == []
    assert ran == [event.id, event.id]
    assert seen == [event.id]  # the ordinary consumer ran exactly once
    assert ConsumedEvent.objects.filter(event=event).count() == 2


def test_a_tasks_events_are_recorded_consumed_with_one_insert_per_consumer(event_type, seen):
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        anchor = OutboxEvent.objects.create(event_type="anchor", aggregate_type="x", aggregate_id="1")
        emitted = outbox.emit_events(events=[(event_type, anchor, {"n": n}) for n in range(3)])

    ids = [event.id for event in emitted]
    assert seen == ids
    inserts = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("INSERT") and "consumedevent" in q["sql"]
    ]
    assert len(inserts) == 1
    assert ConsumedEvent.objects.filter(event_id__in=ids, consumer=f"recorder-{event_type}").count() == 3
    assert not OutboxEvent.objects.filter(pk__in=ids, delivered_at__isnull=True).exists()


def test_a_batch_consumer_gets_the_events_together_and_one_by_one_when_the_batch_fails(event_type):
    batches = []

    @outbox.batch_consumer(event_type, name=f"batcher-{event_type}")
    def _batcher(events):
        batches.append([event.payload["n"] for event in events])
        if len(batches) == 1:
            raise ConnectionError("the first batch fails")

    try:
        with transaction.atomic():
            anchor = OutboxEvent.objects.create(event_type="anchor", aggregate_type="x", aggregate_id="1")
            emitted = outbox.emit_events(events=[(event_type, anchor, {"n": n}) for n in range(3)])
    finally:
        outbox._consumers.pop(event_type, None)
        outbox._batch_consumers.pop(f"batcher-{event_type}", None)

    assert batches == [[0, 1, 2], [0], [1], [2]]
    ids = [event.id for event in emitted]
    assert ConsumedEvent.objects.filter(event_id__in=ids, consumer=f"batcher-{event_type}").count() == 3
    assert not OutboxEvent.objects.filter(pk__in=ids, delivered_at__isnull=True).exists()
