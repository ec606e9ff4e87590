"""Subscription billing throughput: 10,000 due subscriptions billed by one pass, beside payment_create.

    .venv/bin/python bench/billing.py                          # 10,000 subscriptions, 1 pass
    .venv/bin/python bench/billing.py --subscriptions 2000 --wallet-share 0.5 --passes 4 --keep

What it does, in order (nothing here is part of the test suite; it needs PostgreSQL on 127.0.0.1):
1. Drops and recreates its own database `paydesk_bench_billing` (--pg-url), migrates it, and seeds
   --subscriptions subscribers, one user each, each with one monthly subscription that is due now:
   a share (--wallet-share, default 0.2) pays from a wallet funded through the real deposit
   services, the rest with `tok_visa` on the simulated gateway. The subscription rows are
   bulk-inserted in the state the engine leaves them after their first period (one period paid,
   the next due a minute ago); the tokens go through the encrypted field like any other write.
2. Runs one billing pass (`subscriptions_bill_due`, what the beat task and
   `manage.py bill_subscriptions` run) in --passes processes started together, so with more than
   one they share the work through FOR UPDATE SKIP LOCKED. Wall time from the first process's
   start to the last one's end.
3. Measures payment_create the same way: --payments payments (default: as many as subscriptions)
   in a loop split over the same number of processes, tok_visa on the simulated gateway, on the
   same database.
4. Checks the books: every subscription has exactly one renewal payment, `verify_ledger` passes.
   Prints subscriptions/s beside payments/s and their ratio (the cost of the billing engine around
   each payment: claim, begin, settle with its audit row and events). Drops the database unless --keep.

Each process runs config.settings.local with DEBUG off, the simulated gateway, and Celery on an
in-memory broker that is not eager: outbox events are written and handed off as in production,
but no consumer (email) runs inside the measured loop, in either measurement.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH_DB = "paydesk_bench_billing"
AMOUNT = 1500
WALLET_BALANCE = 1_000_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscriptions", type=int, default=10_000, help="due subscriptions to bill (10000)")
    parser.add_argument("--wallet-share", type=float, default=0.2, help="share paying from a wallet (0.2)")
    parser.add_argument("--passes", type=int, default=1, help="billing passes (processes) at once (1)")
    parser.add_argument("--payments", type=int, default=0, help="payments for the comparison (default: same)")
    parser.add_argument("--batch-size", type=int, default=20, help="subscriptions claimed at a time (20)")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="server, no database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    # Internal: the steps that run inside a configured Django process.
    parser.add_argument("--worker", choices=["seed", "bill", "pay", "check"], help=argparse.SUPPRESS)
    parser.add_argument("--share", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- orchestration -------------------------------------------------------------------------------


def bench_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"{args.pg_url}/{BENCH_DB}",
        REDIS_URL="",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        CELERY_BROKER_URL="memory://",
        CELERY_TASK_ALWAYS_EAGER="false",
        PAYMENT_GATEWAY="simulated",
        CONN_MAX_AGE="600",
        SUBSCRIPTION_BILLING_BATCH_SIZE=str(args.batch_size),
        # DEBUG off requires a real key; a throwaway one for a throwaway database.
        FIELD_ENCRYPTION_KEYS=f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}",
    )
    return env


def psql(args: argparse.Namespace, sql: str) -> None:
    subprocess.run(["psql", f"{args.pg_url}/postgres", "-qAt", "-c", sql], check=True)


def run(env: dict[str, str], *command: str) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def in_parallel(
    env: dict[str, str], args: argparse.Namespace, step: str, shares: list[int], now: str
) -> dict:
    """Runs `--worker step` in one process per share, started together; returns the wall time."""
    processes = [
        subprocess.Popen(
            [PYTHON, __file__, "--worker", step, "--share", str(share), "--now", now],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for share in shares
    ]
    reports = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode:
            raise SystemExit(f"{step} worker failed:\n{out}{err}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    started = min(report["started"] for report in reports)
    ended = max(report["ended"] for report in reports)
    return {"elapsed": ended - started, "reports": reports}


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def main(args: argparse.Namespace) -> None:
    env = bench_env(args)
    print(f"[bench] fresh database {BENCH_DB}", flush=True)
    psql(args, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    psql(args, f'CREATE DATABASE "{BENCH_DB}"')
    run(env, PYTHON, "manage.py", "migrate", "--noinput")
    started = time.monotonic()
    seed_env = {**env, "BENCH_WALLET_SHARE": str(args.wallet_share)}
    seeded = run(seed_env, PYTHON, __file__, "--worker", "seed", "--share", str(args.subscriptions))
    seed = json.loads(seeded.strip().splitlines()[-1])
    print(
        f"[bench] seeded {args.subscriptions} due subscriptions ({seed['wallets']} on wallets) "
        f"in {time.monotonic() - started:.0f} s",
        flush=True,
    )

    billing = in_parallel(env, args, "bill", split(args.subscriptions, args.passes), seed["now"])
    outcomes: dict[str, int] = {}
    for report in billing["reports"]:
        for outcome, count in report["summary"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    print(f"[bench] billing: {outcomes} in {billing['elapsed']:.1f} s", flush=True)

    payments = args.payments or args.subscriptions
    paying = in_parallel(env, args, "pay", split(payments, args.passes), seed["now"])
    print(f"[bench] payment_create x {payments} in {paying['elapsed']:.1f} s", flush=True)

    checked = run(env, PYTHON, __file__, "--worker", "check")
    check = json.loads(checked.strip().splitlines()[-1])
    ledger = run(env, PYTHON, "manage.py", "verify_ledger").strip().splitlines()[-1]
    print(
        f"[bench] {check['renewed_once']} of {args.subscriptions} renewed exactly once; {ledger}", flush=True
    )
    if not args.keep:
        psql(args, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')

    sub_rate = outcomes.get("charged", 0) / billing["elapsed"]
    pay_rate = payments / paying["elapsed"]
    print()
    print(f"processes                {args.passes:10d}")
    print(
        f"subscriptions/s          {sub_rate:10.1f}   ({outcomes.get('charged', 0)} charged, "
        f"{outcomes.get('failed', 0)} failed in {billing['elapsed']:.1f} s)"
    )
    print(f"payment_create/s         {pay_rate:10.1f}   ({payments} in {paying['elapsed']:.1f} s)")
    print(f"subscriptions / payments {sub_rate / pay_rate:10.3f}")
    if check["renewed_once"] != args.subscriptions:
        raise SystemExit("some subscriptions were not renewed exactly once")


# --- the steps, inside a configured Django process -----------------------------------------------


def worker(args: argparse.Namespace) -> None:
    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    {"seed": seed_step, "bill": bill_step, "pay": pay_step, "check": check_step}[args.worker](args)


def seed_step(args: argparse.Namespace) -> None:
    from datetime import UTC, datetime, timedelta

    from dateutil.relativedelta import relativedelta
    from django.contrib.auth.hashers import make_password

    from apps.accounts.models import User
    from apps.gateways.base import GatewayResult
    from apps.subscriptions.models import Subscription
    from apps.wallets.services import wallet_create, wallet_deposit_settle, wallet_deposit_start

    count = args.share
    wallets = int(count * float(os.environ.get("BENCH_WALLET_SHARE", "0.2")))
    now = datetime.now(UTC).replace(microsecond=0)
    # No passwords (nobody logs in): an unusable one, not thousands of hashes.
    users = User.objects.bulk_create(
        [User(email=f"subscriber-{n}@bench.example", password=make_password(None)) for n in range(count)],
        batch_size=1000,
    )
    methods = []
    for n, user in enumerate(users):
        if n < wallets:
            # The deposit's two durable steps with the gateway's answer given: real ledger, no card.
            wallet = wallet_create(actor=user, user=user, currency="USD")
            txn = wallet_deposit_start(actor=user, user=user, wallet_id=wallet.pk, amount=WALLET_BALANCE)
            wallet_deposit_settle(actor=user, transaction_id=txn.pk, result=GatewayResult(status="captured"))
            methods.append(f"wallet:{wallet.pk}")
        else:
            methods.append("tok_visa")
    due = now - timedelta(minutes=1)
    anchor = due - relativedelta(months=1)
    Subscription.objects.bulk_create(
        [
            Subscription(
                owner=user,
                plan_id="bench",
                amount=AMOUNT,
                currency="USD",
                billing_cycle="monthly",
                payment_method=method,
                status="active",
                billing_anchor=anchor,
                next_period_index=1,
                current_period_start=anchor,
                current_period_end=due,
                due_at=due,
                created_at=anchor,
            )
            for user, method in zip(users, methods, strict=True)
        ],
        batch_size=1000,
    )
    print(json.dumps({"now": now.isoformat(), "wallets": wallets}))


def bill_step(args: argparse.Namespace) -> None:
    from datetime import datetime

    from apps.subscriptions.services import subscriptions_bill_due

    now = datetime.fromisoformat(args.now)
    started = time.time()
    summary = subscriptions_bill_due(now=now)
    print(json.dumps({"started": started, "ended": time.time(), "summary": summary.as_dict()}))


def pay_step(args: argparse.Namespace) -> None:
    from django.contrib.auth.hashers import make_password

    from apps.accounts.models import User
    from apps.payments.services import payment_create

    owner = User.objects.create(
        email=f"payer-{os.getpid()}-{secrets.token_hex(4)}@bench.example", password=make_password(None)
    )
    started = time.time()
    for n in range(args.share):
        # A customer id per payment: the velocity rule counts per customer, as it would per subscriber.
        payment_create(
            actor=None,
            owner=owner,
            amount=AMOUNT,
            currency="USD",
            payment_method="tok_visa",
            customer_id=f"cus-{os.getpid()}-{n}",
        )
    print(json.dumps({"started": started, "ended": time.time()}))


def check_step(args: argparse.Namespace) -> None:
    from django.db.models import Count, Q

    from apps.payments.models import Payment
    from apps.subscriptions.models import Subscription

    # Seeded with one period paid and no payment row: billed once means one succeeded payment and
    # the next period begun.
    once = (
        Payment.objects.exclude(subscription_id="")
        .values("subscription_id")
        .annotate(n=Count("id"), ok=Count("id", filter=Q(status="succeeded")))
        .filter(n=1, ok=1)
        .values("subscription_id")
    )
    renewed = Subscription.objects.filter(pk__in=once, next_period_index=2, status="active").count()
    print(json.dumps({"renewed_once": renewed}))


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.worker:
        worker(arguments)
    else:
        main(arguments)
