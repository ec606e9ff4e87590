"""What outbound webhooks cost the worker, and how fast one worker delivers (run by hand, not by
the tests or `make bench`).

    DJANGO_SETTINGS_MODULE=config.settings.test .venv/bin/python bench/outbound_webhooks.py [N]

Against real PostgreSQL (a database of its own, BENCH_DATABASE_NAME, default
test_outbound_webhooks_bench, created with the migrations on first run and kept) and a webhook
receiver on 127.0.0.1 (tests/fakes/webhook_receiver.py, a thread of this process). Tasks the web
side queues are captured, then run in this thread as a worker runs them (`Task.apply`), and the
CPU of this thread (time.thread_time: the receiver's threads and PostgreSQL are not counted) is
what is measured:

1. The events consumer with no webhook endpoint (the common case): N transfers and N card
   payments are made twice, their outbox deliveries run once without the `events` consumer and
   once with it; the difference is its cost, per outbox event and per transfer / payment (its own
   time, measured inside it, is printed too).
2. One endpoint: N payments by a user with one endpoint subscribed to everything, the deliveries
   run with the consumer and the sends (the receiver answers 200): the added CPU per payment over
   the same payments with the consumer off.
3. Deliveries per second: 5·N deliveries queued (the broker down), then sent by 1 and by 4
   threads (each thread a worker process's pool slot: claim, POST, record).

`BENCH_PROFILE=cumulative` (any pstats sort key) also prints cProfile's view of the consumer's own
calls and of phase 3's single-threaded sends (the single thread's run is then the profiled one).
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["TEST_DATABASE_NAME"] = os.environ.get("BENCH_DATABASE_NAME", "test_outbound_webhooks_bench")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

django.setup()

from celery.app.task import Task  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from apps.core import outbox  # noqa: E402
from tests.fakes.webhook_receiver import WebhookReceiver  # noqa: E402

queued: list[tuple[Task, list[Any], dict[str, Any]]] = []
_apply_async = Task.apply_async


def capture(self: Task, args: Any = None, kwargs: Any = None, **options: Any) -> None:
    queued.append((self, list(args or []), dict(kwargs or {})))


def drain(only: tuple[str, ...] | None = None) -> tuple[float, int]:
    """Runs the captured tasks (and those they queue) in this thread; returns (CPU s, tasks run).
    With `only`, tasks of other names are dropped (the emails: not what is measured here)."""
    ran = 0
    started = time.thread_time()
    while queued:
        task, args, kwargs = queued.pop(0)
        if only and task.name not in only:
            continue
        task.apply(args=args, kwargs=kwargs)
        ran += 1
    return time.thread_time() - started, ran


DELIVER = "apps.core.tasks.deliver_outbox_events"
SEND = "apps.events.tasks.send_webhook_deliveries"
_saved: dict[str, Any] = {}


def events_consumer(on: bool) -> None:
    """Registers or unregisters the `events` outbox consumer (bench only)."""
    if not on:
        for consumers in outbox._consumers.values():
            if "events" in consumers:
                _saved.setdefault("types", []).append(consumers)
                _saved["func"] = consumers.pop("events")
        _saved["batch"] = outbox._batch_consumers.pop("events")
    else:
        for consumers in _saved.pop("types", []):
            consumers["events"] = _saved["func"]
        outbox._batch_consumers["events"] = _saved.pop("batch")


own_time = [0.0]


def main(n: int) -> None:
    from apps.accounts.tests.factories import UserFactory
    from apps.core.models import OutboxEvent
    from apps.events import consumers
    from apps.events.models import WebhookDelivery
    from apps.events.services import deliveries_send, webhook_endpoint_create
    from apps.payments.services import payment_create
    from apps.wallets.services import wallet_create, wallet_transfer
    from apps.wallets.tests.factories import fund

    connection.creation.create_test_db(keepdb=True, verbosity=0)
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.RISK_VELOCITY_LIMIT = 10**9  # plain payments, none held for review by their number
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    original = consumers.publish_all.__wrapped__ if hasattr(consumers.publish_all, "__wrapped__") else None
    del original
    inner = outbox._batch_consumers["events"]

    profile = cProfile.Profile(time.thread_time) if os.environ.get("BENCH_PROFILE") else None
    send_profile = cProfile.Profile(time.thread_time) if os.environ.get("BENCH_PROFILE") else None

    def timed(events: list[Any]) -> None:
        started = time.thread_time()
        if profile:
            profile.enable()
        inner(events)
        if profile:
            profile.disable()
        own_time[0] += time.thread_time() - started

    outbox._batch_consumers["events"] = timed
    Task.apply_async = capture  # type: ignore[assignment,method-assign]

    run = uuid.uuid4().hex[:8]
    ada = UserFactory(email=f"ada-{run}@example.com")
    bob = UserFactory(email=f"bob-{run}@example.com")
    source = wallet_create(actor=ada, user=ada, currency="USD")
    destination = wallet_create(actor=bob, user=bob, currency="USD")
    fund(source, 10_000_000)
    queued.clear()

    def transfers(count: int) -> int:
        before = OutboxEvent.objects.count()
        for _ in range(count):
            wallet_transfer(
                actor=ada,
                user=ada,
                source_wallet_id=source.pk,
                destination_wallet_id=destination.pk,
                amount=1,
            )
        return OutboxEvent.objects.count() - before

    def payments(user: Any, count: int) -> int:
        before = OutboxEvent.objects.count()
        for _ in range(count):
            payment_create(actor=user, owner=user, amount=100, currency="USD", payment_method="tok_visa")
        return OutboxEvent.objects.count() - before

    def measure(make: Any, *args: Any, consumer: bool, only: tuple[str, ...]) -> tuple[float, int]:
        events_consumer(consumer) if not consumer else None
        queued.clear()
        made = make(*args)
        cpu, _ = drain(only)
        if not consumer:
            events_consumer(True)
        return cpu, made

    # warm-up: imports, template loads, connections, the receiver's first answers
    measure(transfers, 20, consumer=True, only=(DELIVER,))
    measure(payments, ada, 20, consumer=True, only=(DELIVER,))

    print(f"--- 1. no endpoint: {n} transfers, {n} payments")
    for name, make, args in (("transfer", transfers, (n,)), ("payment", payments, (ada, n))):
        off, events_off = measure(make, *args, consumer=False, only=(DELIVER,))
        own_time[0] = 0.0
        on, events_on = measure(make, *args, consumer=True, only=(DELIVER,))
        added = (on - off) * 1000
        print(
            f"{name}s: outbox delivery CPU {off * 1000 / n:.3f} ms per {name} without the consumer, "
            f"{on * 1000 / n:.3f} ms with it: +{added / n:.3f} ms per {name}, "
            f"+{added / events_on:.3f} ms per outbox event ({events_on // n} events per {name}); "
            f"the consumer's own time {own_time[0] * 1000 / events_on:.3f} ms per outbox event"
        )

    with WebhookReceiver() as receiver:
        carol = UserFactory(email=f"carol-{run}@example.com")
        webhook_endpoint_create(actor=carol, user=carol, url=receiver.url, enabled_events=["*"])
        measure(payments, carol, 20, consumer=True, only=(DELIVER, SEND))  # warm-up
        print(f"--- 2. one endpoint: {n} payments (2 events each, both delivered)")
        off, _ = measure(payments, carol, n, consumer=False, only=(DELIVER, SEND))
        before = len(receiver.requests)
        on, _ = measure(payments, carol, n, consumer=True, only=(DELIVER, SEND))
        sent = len(receiver.requests) - before
        print(
            f"worker CPU per payment: {off * 1000 / n:.3f} ms without outbound webhooks, "
            f"{on * 1000 / n:.3f} ms with one endpoint: +{(on - off) * 1000 / n:.3f} ms per payment "
            f"({sent} deliveries sent)"
        )

        print(f"--- 3. deliveries per second to the local receiver ({5 * n} deliveries per run)")
        for threads in (1, 4):
            queued.clear()
            payments(carol, 5 * n // 2)
            drain((DELIVER,))  # the events and their deliveries; the send tasks are dropped
            pending = list(WebhookDelivery.objects.filter(status="pending").values_list("pk", flat=True))
            chunks = [pending[index::threads] for index in range(threads)]
            started = time.monotonic()
            if threads == 1 and send_profile is not None:  # BENCH_PROFILE: the sends' own calls
                send_profile.enable()
                deliveries_send(delivery_ids=pending)
                send_profile.disable()
            workers = (
                []
                if threads == 1 and send_profile is not None
                else [
                    threading.Thread(
                        target=lambda ids: (deliveries_send(delivery_ids=ids), connection.close()),
                        args=(chunk,),
                    )
                    for chunk in chunks
                ]
            )
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            wall = time.monotonic() - started
            done = WebhookDelivery.objects.filter(pk__in=pending, status="succeeded").count()
            print(
                f"{threads} thread(s): {done}/{len(pending)} delivered in {wall:.2f} s: {done / wall:.0f} deliveries/s"
            )
    Task.apply_async = _apply_async  # type: ignore[method-assign]
    if profile:  # the consumer's own calls, every phase
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(os.environ["BENCH_PROFILE"]).print_stats(30)
        print(out.getvalue())
    if send_profile:  # the sends of phase 3's single thread
        out = io.StringIO()
        pstats.Stats(send_profile, stream=out).sort_stats(os.environ["BENCH_PROFILE"]).print_stats(40)
        print(out.getvalue())


if __name__ == "__main__":
    counts = [arg for arg in sys.argv[1:] if arg.isdigit()]
    main(int(counts[0]) if counts else 200)
