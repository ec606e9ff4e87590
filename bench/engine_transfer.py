"""Times single transfers in-process: the money engine's hot path, before and after a change to it.

    DATABASE_URL=postgres://…/bench_db DJANGO_SETTINGS_MODULE=config.settings.test \\
        python bench/engine_transfer.py [--transfers N] [--wallets N] [--compare F1,F2]

Runs against DATABASE_URL's database (migrated; the script adds funded wallets of its own), single
threaded, each transfer its own transaction, no HTTP and no idempotency layer:
- by default it times `apps.wallets.services.wallet_transfer` (the service: ids, the function call,
  the hand-over) N times and prints the median, mean and p90 per transfer in ms;
- `--compare F1,F2` times two transfer functions with the same signature as `wallet_transfer_v2`
  (e.g. the installed one and a candidate created by hand in that database) in alternating rounds,
  so a machine whose load drifts weighs on both alike, and prints each one's figures and the
  ratio of their medians; commits do not wait for the WAL flush there (`synchronous_commit`
  off), which costs both the same and would drown the difference.
Not part of `make bench` (bench/run.py): a tool for whoever changes the engine's SQL.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
django.setup()

from django.db import connection, transaction  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.audit.services import audit_context  # noqa: E402
from apps.core.ids import new_pk  # noqa: E402
from apps.core.models import OutboxEvent  # noqa: E402
from apps.ledger.models import JournalEntry  # noqa: E402
from apps.wallets import engine  # noqa: E402
from apps.wallets.models import Transaction  # noqa: E402
from apps.wallets.services import wallet_create, wallet_transfer  # noqa: E402
from apps.wallets.tests.factories import fund  # noqa: E402


def _wallets(count: int) -> list[tuple[User, str]]:
    made = []
    for _ in range(count):
        user = User.objects.create_user(email=f"bench-{uuid.uuid4().hex[:12]}@example.com", password=None)
        wallet = wallet_create(actor=None, user=user, currency="USD")
        fund(wallet, 10_000_000)
        made.append((user, wallet.pk))
    return made


def _figures(label: str, seconds: list[float]) -> float:
    ms = sorted(s * 1000 for s in seconds)
    median = statistics.median(ms)
    p90 = ms[int(len(ms) * 0.9)]
    print(
        f"{label}: {len(ms)} transfers, median {median:.3f} ms, mean {statistics.fmean(ms):.3f} ms, p90 {p90:.3f} ms"
    )
    return median


def _time_service(wallets: list[tuple[User, str]], n: int) -> list[float]:
    spent = []
    for i in range(n):
        (user, source), (_, destination) = wallets[i % len(wallets)], wallets[(i + 1) % len(wallets)]
        start = time.perf_counter()
        wallet_transfer(
            actor=user, user=user, source_wallet_id=source, destination_wallet_id=destination, amount=1
        )
        spent.append(time.perf_counter() - start)
    return spent


def _time_function(function: str, wallets: list[tuple[User, str]], i: int) -> float:
    (user, source), (_, destination) = wallets[i % len(wallets)], wallets[(i + 1) % len(wallets)]
    params = [
        user.pk,
        source,
        destination,
        1,
        None,
        new_pk(Transaction),
        new_pk(JournalEntry),
        [new_pk(OutboxEvent) for _ in range(3)],
        *engine.audit_args(audit_context(actor=user)),
    ]
    sql = f"SELECT * FROM {function}({', '.join(['%s'] * len(params))})"  # noqa: S608 - names from the command line
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.fetchall()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--transfers", type=int, default=2000, help="transfers per measurement (default 2000)"
    )
    parser.add_argument(
        "--wallets", type=int, default=20, help="funded wallets to move money between (default 20)"
    )
    parser.add_argument("--compare", default="", help="two transfer functions to time in alternating rounds")
    args = parser.parse_args()
    wallets = _wallets(args.wallets)
    if not args.compare:
        _time_service(wallets, min(200, args.transfers))  # warm-up: plans cached, connection open
        _figures("wallet_transfer (service)", _time_service(wallets, args.transfers))
        return
    first, second = args.compare.split(",")
    with connection.cursor() as cursor:  # the commit's flush is the same for both: leave it out
        cursor.execute("SET synchronous_commit = off")
    spent: dict[str, list[float]] = {first: [], second: []}
    rounds, per_round = 20, max(1, args.transfers // 20)
    for function in (first, second):  # warm-up
        for i in range(100):
            _time_function(function, wallets, i)
    for round_ in range(rounds):
        order = (first, second) if round_ % 2 == 0 else (second, first)
        for function in order:
            spent[function] += [_time_function(function, wallets, i) for i in range(per_round)]
    medians = [_figures(function, spent[function]) for function in (first, second)]
    print(f"{second} / {first} (medians): {medians[1] / medians[0]:.3f}")


if __name__ == "__main__":
    main()
