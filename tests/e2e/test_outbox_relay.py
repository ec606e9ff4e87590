"""The outbox relay as production runs it: `manage.py outbox_relay` and `celery -A config worker` as
processes of their own, on the real broker and the test's PostgreSQL database.

A request (here: the services, as a view calls them) publishes nothing; its commit NOTIFYs the
relay, which hands the events to the broker in batches. With the relay down the beat's sweep
delivers; a relay killed between its publish and its commit leaves the rows for the next relay
(published again, consumed once); two relays publish each event once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from amqp.exceptions import NotFound
from celery.signals import before_task_publish
from django.db import connection, transaction
from django.test import override_settings

from apps.accounts.tests.factories import UserFactory
from apps.core import outbox
from apps.core.models import ConsumedEvent, OutboxEvent
from apps.core.tasks import outbox_sweep
from apps.notifications.models import Notification
from apps.wallets.services import wallet_create, wallet_deposit, wallet_transfer
from config.celery import app as celery_app
from tests.workers import BROKER_URL, ROOT, OwnQueues, Worker, start_worker, tasks_sent_to, wait_for

pytestmark = pytest.mark.e2e

DELIVER = "apps.core.tasks.deliver_outbox_events"
ANCHOR = OutboxEvent(pk="evt_anchor")  # names the aggregate of test events; never saved
# A relay hands a worker only the events some consumer wants: the test events are of a type the
# notifications consumer takes (their payload names nobody, so they send no email).
WANTED = "transaction.completed"


@dataclass
class Stack:
    """The test's own queues; the relays and workers it starts on them (all stopped at the end)."""

    queues: OwnQueues
    tmp: Path
    processes: list[Worker] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        # OUTBOX_REDELIVER_AFTER_SECONDS=0: the sweep (run by the worker) hands over at once.
        return {**self.queues.worker_env(), "OUTBOX_RELAY": "true", "OUTBOX_REDELIVER_AFTER_SECONDS": "0"}

    def start_worker(self) -> Worker:
        log = self.tmp / f"worker-{len(self.processes)}.log"
        worker = start_worker(queues=self.queues.names, log_path=log, env=self.env())
        self.processes.append(worker)
        return worker

    def _relay_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "CELERY_BROKER_URL": BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_DEFAULT_QUEUE": self.queues.default,
            "PYTHONUNBUFFERED": "1",
            **self.env(),
        }

    def start_relay(self, *args: str) -> Worker:
        log = self.tmp / f"relay-{len(self.processes)}.log"
        command = [sys.executable, "manage.py", "outbox_relay", "--poll-interval", "0.5", *args]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self._relay_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        relay = Worker(process, log)
        self.processes.append(relay)
        wait_for(lambda: b"listening on channel" in log.read_bytes(), what="the relay to listen", log=log)
        return relay

    def run_relay_once(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "outbox_relay", "--once", *args],
            cwd=ROOT,
            env=self._relay_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def queued(self) -> int:
        with celery_app.connection_for_write() as conn:
            try:
                return conn.default_channel.queue_declare(
                    queue=self.queues.default, passive=True
                ).message_count
            except NotFound:  # nothing published yet declared it
                return 0

    def take_published(self) -> list[list[str]]:
        """Takes every task waiting in the default queue; the event ids of each, in order."""
        batches = []
        with celery_app.connection_for_write() as conn:
            channel = conn.default_channel
            while (message := channel.basic_get(self.queues.default, no_ack=True)) is not None:
                assert message.headers["task"] == DELIVER
                args, _kwargs, _embed = json.loads(message.body)
                batches.append(args[0])
        return batches


@pytest.fixture
def stack(transactional_db, tmp_path) -> Iterator[Stack]:
    queues = OwnQueues.new("relay")
    stack = Stack(queues, tmp_path)
    with tasks_sent_to(queues, BROKER_URL), override_settings(OUTBOX_RELAY=True):
        try:
            yield stack
        finally:
            for process in stack.processes:
                process.stop()


@pytest.fixture
def request_publishes() -> Iterator[list[str]]:
    """Every task this (the web) process publishes."""
    published: list[str] = []

    def record(sender, **kwargs):
        published.append(sender)

    before_task_publish.connect(record)
    yield published
    before_task_publish.disconnect(record)


def _money():
    ada = UserFactory(email="ada@example.com", full_name="Ada Lovelace")
    bob = UserFactory(email="bob@example.com", full_name="Bob Babbage")
    source = wallet_create(actor=ada, user=ada, currency="USD")
    destination = wallet_create(actor=bob, user=bob, currency="USD")
    wallet_deposit(actor=ada, user=ada, wallet_id=source.pk, amount=10_000, payment_method="tok_visa")
    return ada, source, destination


def _transfer(ada, source, destination, amount=1_000):
    return wallet_transfer(
        actor=ada, user=ada, source_wallet_id=source.pk, destination_wallet_id=destination.pk, amount=amount
    )


def _changes(count: int, events: int = 1) -> list[list[str]]:
    written = []
    for _ in range(count):
        with transaction.atomic():
            rows = outbox.emit_events(events=[(WANTED, ANCHOR, {"n": n}) for n in range(events)])
        written.append([row.id for row in rows])
    return written


def _all_delivered(ids) -> bool:
    return not OutboxEvent.objects.filter(pk__in=ids, delivered_at__isnull=True).exists()


def test_a_transfers_events_reach_the_worker_through_the_relay_without_an_on_commit_publish(
    stack, request_publishes
):
    worker = stack.start_worker()
    heartbeat = stack.tmp / "relay.heartbeat"
    relay = stack.start_relay("--heartbeat-file", str(heartbeat))
    ada, source, destination = _money()

    request_publishes.clear()
    transfer = _transfer(ada, source, destination)

    assert DELIVER not in request_publishes  # the request hands nothing to the broker
    events = OutboxEvent.objects.filter(payload__transaction=transfer.pk)
    ids = list(events.values_list("id", flat=True))
    assert len(ids) == 3
    wait_for(
        lambda: _all_delivered(ids), timeout=30, what="the relay and worker to deliver", log=worker.log_path
    )
    assert {(e.publish_attempts, e.published_at is not None) for e in events} == {(1, True)}
    assert sorted(Notification.objects.filter(event__in=ids).values_list("template", flat=True)) == [
        "transfer_received",
        "transfer_sent",
    ]
    assert "handed over" in relay.log_path.read_text()
    assert heartbeat.exists()  # what the container's health check looks at


def test_the_relay_publishes_one_task_per_batch(stack):
    changes = _changes(10)  # ten changes of one event, committed while no relay runs
    ids = [event_id for change in changes for event_id in change]

    out = stack.run_relay_once("--batch-size", "4")

    assert "handed over 10 event(s) in 3 task(s)" in out
    assert stack.take_published() == [ids[0:4], ids[4:8], ids[8:10]]  # ceil(10 / 4) tasks, in order
    assert (
        OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=False, publish_attempts=1).count() == 10
    )


def test_woken_by_a_commit_the_relay_lingers_so_the_commits_behind_it_share_its_task(stack):
    relay = stack.start_relay("--linger", "1.5")

    # when: five changes commit one after another, well within the linger
    changes = _changes(5)
    ids = [event_id for change in changes for event_id in change]

    # then: they went to the broker as one task, in order
    wait_for(lambda: stack.queued() >= 1, what="the relay's task", log=relay.log_path)
    wait_for(
        lambda: not OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True).exists(),
        what="the batch to be marked",
        log=relay.log_path,
    )
    assert stack.take_published() == [ids]
    assert "handed over 5 event(s) in 1 task(s)" in relay.log_path.read_text()


def test_with_the_relay_down_the_sweep_delivers(stack):
    worker = stack.start_worker()
    ada, source, destination = _money()  # no relay: these wait in the outbox
    transfer = _transfer(ada, source, destination)
    ids = list(OutboxEvent.objects.filter(payload__transaction=transfer.pk).values_list("id", flat=True))
    assert (
        OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True, delivered_at__isnull=True).count()
        == 3
    )

    outbox_sweep.delay()  # as beat's outbox-sweep does, run by the worker

    wait_for(lambda: _all_delivered(ids), timeout=30, what="the sweep to deliver", log=worker.log_path)
    assert Notification.objects.filter(event__in=ids).count() == 2


def test_a_relay_killed_between_its_publish_and_its_commit_is_made_good_by_the_next(stack):
    changes = _changes(3, events=3)
    ids = [event_id for change in changes for event_id in change]

    # given: the relay's marking UPDATE waits (a SHARE lock on the table lets its SELECT ... FOR NO
    # KEY UPDATE through but not its UPDATE), so it is caught after publishing, before committing
    blocker = connection.get_new_connection(connection.get_connection_params())
    blocker.execute(f"LOCK TABLE {OutboxEvent._meta.db_table} IN SHARE MODE")
    try:
        first = stack.start_relay()
        wait_for(lambda: stack.queued() == 1, what="the first relay's task", log=first.log_path)
        first.kill()  # SIGKILL: no rollback sent, no commit either
    finally:
        blocker.rollback()
        blocker.close()
    assert OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True).count() == 9

    # when: a relay starts again, and a worker
    second = stack.start_relay()
    worker = stack.start_worker()

    # then: the events were published twice, are delivered, and every consumer ran once
    wait_for(lambda: _all_delivered(ids), timeout=30, what="delivery", log=worker.log_path)
    wait_for(
        lambda: worker.log_path.read_text().count(f"Task {DELIVER}[") >= 2 * 2,  # received + succeeded, twice
        what="both tasks to run",
        log=worker.log_path,
    )
    assert OutboxEvent.objects.filter(pk__in=ids, publish_attempts=1).count() == 9  # only the second's mark
    consumed = list(ConsumedEvent.objects.filter(event__in=ids).values_list("event_id", "consumer"))
    assert len(consumed) == len(set(consumed))
    assert "handed over 9 event(s) in 1 task(s)" in second.log_path.read_text()


def test_two_relays_publish_each_event_once(stack):
    stack.start_relay()
    stack.start_relay()

    ids = [event_id for change in _changes(40, events=3) for event_id in change]
    wait_for(
        lambda: not OutboxEvent.objects.filter(pk__in=ids, published_at__isnull=True).exists(),
        what="both relays to hand everything over",
        log=stack.processes[0].log_path,
    )

    published = [event_id for batch in stack.take_published() for event_id in batch]
    assert sorted(published) == sorted(ids)  # every event once, none twice
    assert OutboxEvent.objects.filter(pk__in=ids, publish_attempts=1).count() == len(ids)
