"""How many signed webhook events Paydesk accepts per second, and how many one worker processes.

    .venv/bin/python bench/webhooks.py                      # 600 payments -> 1,800 events, 1 client
    .venv/bin/python bench/webhooks.py --payments 2000 --clients 4 --keep

What it does, in order (nothing here is part of the test suite; it needs PostgreSQL, Redis and
RabbitMQ on their usual local ports):
1. Drops and recreates its own database `paydesk_bench_webhooks`, migrates it, and makes
   --payments card payments through the real services (simulated gateway, so each has a gateway
   reference). For each payment it prepares three Stripe events, signed with the official SDK's
   helper: `refund.created` for part of it (a Refund row, a ledger entry, audit row and outbox
   event when applied), `charge.dispute.created` (the payment flagged, audit row, event) and
   `customer.updated` (stored, then ignored). Signing happens before the clock starts.
2. Accept: --clients threads, each with its own Django test client (the whole middleware and view
   stack, no HTTP server), POST every event to /api/v1/webhooks/stripe: verify, parse, INSERT,
   commit, publish the task to RabbitMQ (a queue of the bench's own, which nobody consumes), 200.
   Then every event again: the duplicate path (the unique constraint answers, nothing is queued).
3. Process: one thread runs the Celery task `process_webhook_event` in-process (`task.apply`, the
   way a worker runs it minus fetching the message) for every stored event, in arrival order.
4. Prints events/s and latency percentiles for each phase and the processing outcomes, proves the
   books with `verify_ledger`, then drops the database and the bench's queues unless --keep.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "paydesk_bench_webhooks"
SECRET = "whsec_bench_" + secrets.token_hex(16)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=int, default=600, help="payments to seed; 3 events each (600)")
    parser.add_argument("--clients", type=int, default=1, help="concurrent delivering threads (1)")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="server, no database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--keep", action="store_true", help="keep the database and queues afterwards")
    return parser.parse_args()


def psql(args: argparse.Namespace, sql: str) -> None:
    subprocess.run(["psql", f"{args.pg_url}/postgres", "-qAtX", "-c", sql], check=True, capture_output=True)


def configure(args: argparse.Namespace, prefix: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS=f"bench:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}",
        DATABASE_URL=f"{args.pg_url}/{BENCH_DB}",
        CONN_MAX_AGE="600",
        REDIS_URL=args.redis_url,
        CACHE_KEY_PREFIX=prefix,
        CELERY_BROKER_URL=args.broker_url,
        CELERY_TASK_ALWAYS_EAGER="false",
        CELERY_DEFAULT_QUEUE=prefix,
        CELERY_QUEUE_PREFIX=f"{prefix}-",
        STRIPE_WEBHOOK_SECRET=SECRET,
        PAYMENT_VELOCITY_LIMIT="1000000000",
        LOG_LEVEL="ERROR",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(payments: int) -> list[bytes]:
    """Makes the payments and returns the events about them, encoded as Stripe sends them."""
    from apps.accounts.models import User
    from apps.payments.services import payment_create
    from apps.webhooks.tests.factories import encode, stripe_event

    owner = User.objects.create_user("bench-webhooks@example.com", "bench-password-0123")
    events: list[bytes] = []
    for n in range(payments):
        payment = payment_create(
            actor=owner, owner=owner, amount=5000, currency="USD", payment_method="tok_visa"
        )
        reference = payment.gateway_reference
        refund = {
            "id": f"re_bench_{n}",
            "object": "refund",
            "amount": 1200,
            "currency": "usd",
            "payment_intent": reference,
            "status": "succeeded",
        }
        dispute = {
            "id": f"dp_bench_{n}",
            "object": "dispute",
            "payment_intent": reference,
            "reason": "fraudulent",
        }
        for kind, obj in (
            ("refund.created", refund),
            ("charge.dispute.created", dispute),
            ("customer.updated", {"id": f"cus_{n}", "object": "customer"}),
        ):
            events.append(encode(stripe_event(kind, obj)))
        if (n + 1) % 100 == 0:
            print(f"\r[bench] seeded {n + 1}/{payments} payments", end="", flush=True)
    print(flush=True)
    return events


def deliver_all(bodies: list[bytes], clients: int) -> tuple[float, list[float], dict[int, int]]:
    """POSTs every body, signed, from `clients` threads; returns (seconds, latencies, statuses)."""
    from django.db import connection
    from django.test import Client

    from apps.webhooks.tests.factories import stripe_signature

    signed = [(body, stripe_signature(body, SECRET)) for body in bodies]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def run(share: list[tuple[bytes, str]]) -> None:
        client, mine, codes = Client(), [], {}
        try:
            for body, signature in share:
                started = time.perf_counter()
                response = client.post(
                    "/api/v1/webhooks/stripe",
                    data=body,
                    content_type="application/json",
                    HTTP_STRIPE_SIGNATURE=signature,
                )
                mine.append(time.perf_counter() - started)
                codes[response.status_code] = codes.get(response.status_code, 0) + 1
        finally:
            connection.close()
        with lock:
            latencies.extend(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=run, args=(signed[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, statuses


def process_all() -> tuple[float, list[float], dict[str, int]]:
    from django.db.models import Count

    from apps.webhooks.models import WebhookEvent
    from apps.webhooks.tasks import process_webhook_event

    event_ids = list(WebhookEvent.objects.order_by("received_at", "pk").values_list("pk", flat=True))
    latencies = []
    started = time.perf_counter()
    for event_id in event_ids:
        begun = time.perf_counter()
        process_webhook_event.apply(args=[event_id])
        latencies.append(time.perf_counter() - begun)
    elapsed = time.perf_counter() - started
    outcomes = dict(
        WebhookEvent.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    return elapsed, latencies, outcomes


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else values[0] * 1000


def report(name: str, count: int, elapsed: float, latencies: list[float], extra: str) -> None:
    print(
        f"{name:<22} {count:>6} events in {elapsed:6.2f} s = {count / elapsed:8.1f}/s   "
        f"p50 {percentile(latencies, 50):6.2f} ms  p95 {percentile(latencies, 95):6.2f} ms  "
        f"p99 {percentile(latencies, 99):6.2f} ms   {extra}",
        flush=True,
    )


def cleanup(args: argparse.Namespace, prefix: str) -> None:
    from django.db import connections
    from kombu import Connection

    connections.close_all()
    try:
        with Connection(args.broker_url, connect_timeout=3) as connection:
            for queue in (prefix, f"{prefix}-webhooks"):
                connection.default_channel.queue_delete(queue)
    except Exception as exc:  # a leftover queue is untidy, not wrong
        print(f"[bench] could not delete the bench's queues: {exc}", flush=True)
    psql(args, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def main() -> None:
    args = parse_args()
    prefix = f"bench-webhooks-{secrets.token_hex(4)}"
    psql(args, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    psql(args, f'CREATE DATABASE "{BENCH_DB}"')
    configure(args, prefix)
    from django.core.management import call_command

    try:
        call_command("migrate", verbosity=0)
        print(f"[bench] seeding {args.payments} payments ({args.payments * 3} events)", flush=True)
        bodies = seed(args.payments)

        elapsed, latencies, statuses = deliver_all(bodies, args.clients)
        report(f"accept ({args.clients} client(s))", len(bodies), elapsed, latencies, f"HTTP {statuses}")
        elapsed, latencies, statuses = deliver_all(bodies, args.clients)
        report("accept duplicates", len(bodies), elapsed, latencies, f"HTTP {statuses}")
        elapsed, latencies, outcomes = process_all()
        report("process (1 worker)", len(bodies), elapsed, latencies, f"{outcomes}")

        call_command("verify_ledger")
    finally:
        if args.keep:
            print(f"[bench] kept database {BENCH_DB} and queues {prefix}, {prefix}-webhooks", flush=True)
        else:
            cleanup(args, prefix)


if __name__ == "__main__":
    main()
