"""What a transfer's deferred work costs the worker, in-process (run by hand, not by the tests).

    DJANGO_SETTINGS_MODULE=config.settings.test .venv/bin/python bench/worker_profile.py [TRANSFERS] [--each]

Against real PostgreSQL (a database of its own, BENCH_DATABASE_NAME, default test_worker_bench,
created with the migrations on first run and kept) and the tests' SMTP sink (tests/fakes/smtp_sink.py,
a thread of this process). The web side is played first, unmeasured: TRANSFERS transfers (default
200), each its own change, whose tasks are captured instead of published. Then every captured task
is run in this thread, as a worker would, in the order they were queued, including the tasks they
queue in turn (send the emails, deliver the `notification.sent` events), until nothing is left: a
backlog, as a busy worker has. With --each, each transfer's work is drained before the next
transfer is made (an idle worker: no batch to share).

Printed: the tasks run by name, the CPU time of this thread while draining (time.thread_time: the
sink's thread and PostgreSQL's processes are not counted) in ms per transfer, the emails received
and the SMTP connections opened, and cProfile's top entries by own time and by cumulative time.
Celery's own cost of receiving a message (decoding, acking) is not in it: `Task.apply` runs each
task's body with Celery's tracing, in this process.
"""

from __future__ import annotations

import cProfile
import io
import logging
import os
import pstats
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ["TEST_DATABASE_NAME"] = os.environ.get("BENCH_DATABASE_NAME", "test_worker_bench")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

django.setup()

from celery.app.task import Task  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from tests.fakes.smtp_sink import SmtpSink  # noqa: E402

queued: list[tuple[Task, list[Any], dict[str, Any]]] = []
spent: Counter[str] = Counter()  # CPU seconds by task name


def capture(self: Task, args: Any = None, kwargs: Any = None, **options: Any) -> None:
    queued.append((self, list(args or []), dict(kwargs or {})))


EACH = "--each" in sys.argv


def relay() -> bool:
    """The relay process's pass (its CPU counted apart, under "relay"): hands the next batch of
    unpublished events over as one task, as `manage.py outbox_relay` does; False when none is left."""
    from apps.core.outbox import relay_batch

    started = time.thread_time()
    batch = relay_batch(batch_size=settings.OUTBOX_RELAY_BATCH_SIZE)
    spent["relay"] += time.thread_time() - started
    return bool(batch.event_ids)


def main(transfers: int) -> None:
    from apps.accounts.tests.factories import UserFactory
    from apps.wallets.services import wallet_create, wallet_transfer
    from apps.wallets.tests.factories import fund

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the sink's log of every SMTP command
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    Task.apply_async = capture  # type: ignore[assignment,method-assign]
    with SmtpSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = sink.host, sink.port
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.OUTBOX_RELAY = True  # as in production: the relay hands events over, in batches

        run = uuid.uuid4().hex[:8]  # the database is kept between runs
        ada = UserFactory(email=f"ada-{run}@example.com", full_name="Ada Lovelace")
        bob = UserFactory(email=f"bob-{run}@example.com", full_name="Bob Babbage")
        source = wallet_create(actor=ada, user=ada, currency="USD")
        destination = wallet_create(actor=bob, user=bob, currency="USD")
        fund(source, 1_000_000)

        def transfer_and_drain(
            count: int, profile: cProfile.Profile | None = None
        ) -> tuple[float, Counter[str]]:
            queued.clear()
            for _ in range(count):  # the web side, unmeasured
                wallet_transfer(
                    actor=ada,
                    user=ada,
                    source_wallet_id=source.pk,
                    destination_wallet_id=destination.pk,
                    amount=1,
                )
            ran: Counter[str] = Counter()
            started = time.thread_time()
            if profile:
                profile.enable()
            while queued or relay():  # the worker's side, measured
                if not queued:  # the relay's batch went to no worker (no consumer wanted it)
                    continue
                task, args, kwargs = queued.pop(0)
                ran[task.name] += 1
                task_started = time.thread_time()
                task.apply(args=args, kwargs=kwargs)
                spent[task.name] += time.thread_time() - task_started
            if profile:
                profile.disable()
            return time.thread_time() - started, ran

        transfer_and_drain(10)  # warm-up: imports, first template loads, connections
        sink.wait_for(20)
        spent.clear()
        before = (len(sink.received()), sink.connections)
        if EACH:  # no backlog: each transfer's work drained before the next is made
            cpu, ran = 0.0, Counter()
            for _ in range(transfers):
                one_cpu, one_ran = transfer_and_drain(1)
                cpu, ran = cpu + one_cpu, ran + one_ran
        else:
            cpu, ran = transfer_and_drain(transfers)
        sink.wait_for(before[0] + 2 * transfers)
        emails, connections = len(sink.received()) - before[0], sink.connections - before[1]
        spent_measured = dict(spent)
        profile = cProfile.Profile(time.thread_time)  # CPU of this thread, not wall time
        if EACH:  # the profile of what was measured: each transfer drained alone
            profiled = sum(transfer_and_drain(1, profile)[0] for _ in range(transfers))
        else:
            profiled, _ = transfer_and_drain(transfers, profile)

    print(f"{transfers} transfers; tasks run: {dict(ran)}")
    print(f"emails received: {emails}; SMTP connections: {connections}")
    print(f"worker CPU: {cpu * 1000:.1f} ms in all, {cpu * 1000 / transfers:.2f} ms per transfer")
    by_task = {name: round(seconds * 1000 / transfers, 2) for name, seconds in spent_measured.items()}
    print(f"ms per transfer by task: {by_task}")
    print(f"(under cProfile, a second round: {profiled * 1000 / transfers:.2f} ms per transfer)")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(25)
        print(f"--- top by {key}", out.getvalue().split("\n", 6)[-1], sep="\n")
    if os.environ.get("BENCH_DETAIL"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(os.environ["BENCH_DETAIL"], 60)
        print(out.getvalue().split("\n", 6)[-1])
    if os.environ.get("BENCH_CALLEES"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_callees(os.environ["BENCH_CALLEES"])
        print(out.getvalue())


if __name__ == "__main__":
    counts = [arg for arg in sys.argv[1:] if arg.isdigit()]
    main(int(counts[0]) if counts else 200)
