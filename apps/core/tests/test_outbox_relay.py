"""The outbox relay: events are born unpublished, a commit NOTIFYs, the relay hands them over in
batches of whole changes and marks them; two relays never claim the same rows."""

import math
import threading
import uuid
from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from celery.signals import task_prerun
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings

from apps.core import outbox
from apps.core.models import ConsumedEvent, OutboxEvent
from tests.workers import tasks_published_to

pytestmark = pytest.mark.django_db(transaction=True)

relay_on = override_settings(OUTBOX_RELAY=True)  # tasks stay eager: the relay's task runs here
ANCHOR = OutboxEvent(pk="evt_anchor")  # any model instance with a pk names the aggregate; not saved


@pytest.fixture
def event_type():
    return f"test.relay.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def seen(event_type):
    """A consumer of `event_type` recording each event id it is given."""
    calls: list[str] = []

    @outbox.consumer(event_type, name=f"recorder-{event_type}")
    def _record(event):
        calls.append(event.id)

    yield calls
    outbox._consumers.pop(event_type, None)


@pytest.fixture
def tasks_run():
    """The deliver_outbox_events tasks that ran (eagerly, in this process), with their event ids."""
    runs: list[list[str]] = []

    def record(sender, args, **kwargs):
        if sender.name == "apps.core.tasks.deliver_outbox_events":
            runs.append(list(args[0]))

    task_prerun.connect(record)
    yield runs
    task_prerun.disconnect(record)


@pytest.fixture
def listener():
    """A second session LISTENing on the relay's channel, as the relay does."""
    params = connection.get_connection_params()
    conn = connection.get_new_connection(params)
    conn.autocommit = True
    conn.execute(f"LISTEN {outbox.OUTBOX_CHANNEL}")
    yield conn
    conn.close()


def _change(event_type, events=3):
    """One change (one transaction) writing `events` events; returns their ids in written order."""
    with transaction.atomic():
        written = outbox.emit_events(events=[(event_type, ANCHOR, {"n": n}) for n in range(events)])
    return [event.id for event in written]


def _notifications(conn: psycopg.Connection, wait: float = 0.5) -> list[str]:
    return [note.channel for note in conn.notifies(timeout=wait)]


def test_a_committed_change_notifies_the_relay_once_and_a_rolled_back_one_never(event_type, listener):
    with transaction.atomic():
        outbox.emit_events(events=[(event_type, ANCHOR, {}) for _ in range(3)])
        OutboxEvent.objects.create(event_type=event_type, aggregate_type="x", aggregate_id="1")
        assert _notifications(listener, wait=0.3) == []  # not before the commit
    assert _notifications(listener) == [outbox.OUTBOX_CHANNEL]  # one per transaction, not per row

    def failing_change():
        with transaction.atomic():
            outbox.emit_events(events=[(event_type, ANCHOR, {})])
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert _notifications(listener) == []


def test_events_are_written_unpublished_whoever_writes_them(event_type):
    # as the engine functions write them: "counted as handed over"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO core_outboxevent (id, event_type, aggregate_type, aggregate_id, payload, "
            "correlation_id, created_at, published_at, publish_attempts) "
            "VALUES ('evt_sql', %s, 'x', '1', '{}', '', now(), now(), 1)",
            [event_type],
        )
    written = OutboxEvent.objects.get(pk="evt_sql")
    assert (written.published_at, written.publish_attempts) == (None, 0)


@relay_on
def test_with_the_relay_on_a_commit_publishes_nothing_and_the_relay_delivers(event_type, seen, tasks_run):
    ids = _change(event_type)

    assert tasks_run == []
    assert (
        OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True, delivered_at__isnull=True).count()
        == 3
    )

    batch = outbox.relay_batch(batch_size=100)
    assert batch == outbox.RelayBatch(ids, published=True)
    assert tasks_run == [ids]
    assert seen == ids  # delivered in the order the change wrote them
    rows = OutboxEvent.objects.filter(pk__in=ids)
    assert all(row.published_at is not None and row.publish_attempts == 1 for row in rows)
    assert all(row.delivered_at is not None for row in rows)
    assert outbox.relay_batch(batch_size=100).event_ids == []  # nothing published twice


@relay_on
def test_the_relay_publishes_one_task_per_batch_of_whole_changes_in_written_order(
    event_type, seen, tasks_run
):
    changes = [_change(event_type) for _ in range(5)]  # 15 events

    out = StringIO()
    call_command("outbox_relay", "--once", "--batch-size", "7", stdout=out)

    # 7 rows claimed: two whole changes and the first of a third, which waits whole for the next task
    assert tasks_run == [changes[0] + changes[1], changes[2] + changes[3], changes[4]]
    assert len(tasks_run) == math.ceil(15 / 7)
    assert "handed over 15 event(s) in 3 task(s)" in out.getvalue()
    assert seen == [event_id for change in changes for event_id in change]
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    assert set(OutboxEvent.objects.values_list("publish_attempts", flat=True)) == {1}


@relay_on
def test_events_no_consumer_wants_are_marked_delivered_by_the_relay_not_handed_to_a_worker(
    event_type, seen, tasks_run
):
    # given: a change with events of a consumed type and of types nobody consumes now (none
    # registered; one whose only consumer's condition does not hold, as a sink left unconfigured)
    sink_on = {"value": False}
    outbox.consumer(f"{event_type}.sink", name=f"sink-{event_type}", when=lambda: sink_on["value"])(
        lambda event: None
    )
    try:
        with transaction.atomic():
            written = outbox.emit_events(
                events=[
                    (event_type, ANCHOR, {}),
                    (f"{event_type}.nobody", ANCHOR, {}),
                    (f"{event_type}.sink", ANCHOR, {}),
                ]
            )
        consumed, nobody, sink = (event.id for event in written)

        # when
        batch = outbox.relay_batch(batch_size=100)

        # then: the batch is all three, but only the consumed one went to a worker
        assert batch == outbox.RelayBatch([consumed, nobody, sink], published=True)
        assert tasks_run == [[consumed]]
        assert seen == [consumed]
        rows = {row.pk: row for row in OutboxEvent.objects.filter(pk__in=batch.event_ids)}
        assert all(row.published_at is not None and row.delivered_at is not None for row in rows.values())
        assert not ConsumedEvent.objects.filter(event_id__in=[nobody, sink]).exists()

        # when: the sink is configured, its events go to a worker again
        sink_on["value"] = True
        with transaction.atomic():
            (later,) = outbox.emit_events(events=[(f"{event_type}.sink", ANCHOR, {})])
        outbox.relay_batch(batch_size=100)
        assert tasks_run[-1] == [later.id]
    finally:
        outbox._consumers.pop(f"{event_type}.sink", None)
        outbox._conditions.pop(f"sink-{event_type}", None)


@relay_on
def test_a_change_larger_than_the_batch_goes_whole_in_one_task(event_type, seen, tasks_run):
    big, small = _change(event_type, events=5), _change(event_type, events=1)

    assert outbox.relay_batch(batch_size=2).event_ids == big
    assert outbox.relay_batch(batch_size=2).event_ids == small
    assert tasks_run == [big, small]


@relay_on
def test_two_relays_claim_disjoint_events(event_type):
    ids = [event_id for _ in range(4) for event_id in _change(event_type)]
    first_claimed, release = threading.Event(), threading.Event()
    claims: dict[str, list[str]] = {}

    def first_relay():
        try:
            with transaction.atomic():
                claims["first"] = outbox.claim_unpublished(limit=6)
                first_claimed.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=first_relay)
    thread.start()
    try:
        assert first_claimed.wait(10)
        with transaction.atomic():
            claims["second"] = outbox.claim_unpublished(limit=100)  # skips, does not wait
    finally:
        release.set()
        thread.join()
    assert [event_id for event_id, _ in claims["first"]] == ids[:6]
    assert [event_id for event_id, _ in claims["second"]] == ids[6:]


@relay_on
def test_a_refused_publish_leaves_the_batch_unpublished_for_the_next_pass(event_type, seen):
    ids = _change(event_type)
    with tasks_published_to():  # the broker is down
        assert outbox.relay_batch(batch_size=100) == outbox.RelayBatch(ids, published=False)
    rows = OutboxEvent.objects.filter(pk__in=ids)
    assert all(row.published_at is None and row.publish_attempts == 0 for row in rows)


@relay_on
def test_a_relay_pass_the_broker_refuses_fails_the_command_and_marks_nothing(event_type, seen):
    ids = _change(event_type)
    out = StringIO()
    with tasks_published_to(), pytest.raises(CommandError, match="the broker refused"):
        call_command("outbox_relay", "--once", stdout=out)
    assert "handed over 0 event(s) in 0 task(s)" in out.getvalue()
    assert OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True, publish_attempts=0).count() == 3


@relay_on
def test_with_the_relay_down_the_sweep_delivers(event_type, seen):
    ids = _change(event_type)
    assert outbox.undelivered_events() == []  # fresh: left to the relay for now

    assert outbox.sweep_outbox(older_than=timedelta(0)) == 3
    assert seen == ids
    assert ConsumedEvent.objects.filter(event_id__in=ids).count() == 3


@relay_on
def test_a_dry_run_publishes_and_marks_nothing(event_type, tasks_run):
    ids = _change(event_type)
    out = StringIO()

    call_command("outbox_relay", "--dry-run", "--batch-size", "2", stdout=out)

    assert "3 unpublished event(s), about 2 task(s) of up to 2; nothing published or marked" in out.getvalue()
    assert ", ".join(ids) in out.getvalue()
    assert tasks_run == []
    assert OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True, publish_attempts=0).count() == 3


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("outbox_relay", "--once", "--batch-size", "0")
