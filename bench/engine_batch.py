"""Times batch transfers in-process: the batch function alone, before and after a change to it.

    DATABASE_URL=postgres://…/bench_db DJANGO_SETTINGS_MODULE=config.settings.test \\
        python bench/engine_batch.py [--batches N] [--wallets N] [--size N] [--function F]
                                     [--compare F1,F2] [--previous] [--profile]

Runs against DATABASE_URL's database (migrated; the script adds funded wallets of its own, one per
user), single threaded, no HTTP, no idempotency layer and no service: each batch is one call of a
function with the signature of `wallet_transfer_batch_v1` in its own transaction, `--size`
transfers (default 100) from a random wallet to random other wallets, atomic, none refused, as
bench/run.py's `transfers_batch` scenario sends them. Commits do not wait for the WAL flush
(`synchronous_commit` off): it costs every batch the same and would drown the difference.
- by default it times `--function` (default: the one apps.wallets.transfers calls) and prints the
  median, mean and p90 per batch in ms, split into the call and the commit (the ledger's deferred
  balance trigger runs at commit, one per posting, while the batch still holds its locks);
- `--compare F1,F2` times two such functions in alternating rounds, so a machine whose load drifts
  weighs on both alike, and prints each one's figures and the ratio of their medians;
- `--previous` puts `wallet_transfer_batch_v1` back for the run (migration 0006's functions) and
  the database as migrated after it (0009's), for `--compare wallet_transfer_batch_v1,…_v2`;
- `--profile` (needs a superuser, to LOAD auto_explain) runs `--function` with auto_explain (nested statements, actual times) and prints
  where the call's time goes, by statement; what is left is plpgsql itself (assignments,
  expressions, loops), which auto_explain does not see.
A batch holds every lock it takes until commit, and batches over random wallets share most of them,
so they run one after another: the call + commit time per batch bounds the batched transfers/s.
Measured (migration wallets 0009's docstring): v1 59-68 ms, v2 39-40 ms per batch of 100, with
`--previous --compare wallet_transfer_batch_v1,wallet_transfer_batch_v2` (ratio 0.60-0.66).
Not part of `make bench` (bench/run.py): a tool for whoever changes the batch function's SQL.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
import uuid
from collections import defaultdict
from importlib import import_module
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
django.setup()

from django.apps import apps as registry  # noqa: E402
from django.db import connection  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.audit.services import audit_context  # noqa: E402
from apps.core.ids import new_id, new_pk  # noqa: E402
from apps.core.models import OutboxEvent  # noqa: E402
from apps.ledger.models import JournalEntry  # noqa: E402
from apps.wallets import engine  # noqa: E402
from apps.wallets import transfers as transfers_module  # noqa: E402
from apps.wallets.models import Transaction  # noqa: E402
from apps.wallets.services import wallet_create  # noqa: E402
from apps.wallets.tests.factories import fund  # noqa: E402

PREVIOUS = import_module("apps.wallets.migrations.0006_transfer_batch_function")
CURRENT = import_module("apps.wallets.migrations.0009_transfer_batch_set_based")
INSTALLED = re.search(r"FROM (\w+)\(", transfers_module._BATCH_SQL).group(1)  # type: ignore[union-attr]


def _wallets(count: int) -> list[tuple[User, str]]:
    made = []
    for _ in range(count):
        user = User.objects.create_user(email=f"bench-{uuid.uuid4().hex[:12]}@example.com", password=None)
        wallet = wallet_create(actor=None, user=user, currency="USD")
        fund(wallet, 1_000_000_000)
        made.append((user, wallet.pk))
    return made


def _install(migration) -> None:
    """Runs a migration's install again: 0006 puts `wallet_transfer_batch_v1` (and its
    `wallet_transfer_apply`) back beside v2; 0009 makes the database as migrated again."""
    with connection.schema_editor() as editor:
        migration.install(registry, editor)


def _params(wallets: list[tuple[User, str]], size: int, rng: random.Random) -> list:
    """One batch's parameters: `size` transfers from a random wallet to random other wallets."""
    user, source = rng.choice(wallets)
    others = [wallet for _, wallet in wallets if wallet != source]
    items = [
        {
            "source_wallet": source,
            "destination_wallet": rng.choice(others),
            "amount": rng.randint(1, 100),
            "description": None,
            "transaction": new_pk(Transaction),
            "entry": new_pk(JournalEntry),
            "events": [new_pk(OutboxEvent) for _ in range(3)],
        }
        for _ in range(size)
    ]
    who = audit_context(actor=user)
    return [user.pk, json.dumps(items), True, new_id("bat"), new_pk(OutboxEvent), *engine.audit_args(who)]


def _time_batch(function: str, params: list) -> tuple[float, float]:
    """The call's and the commit's seconds of one batch in its own transaction."""
    sql = f"SELECT * FROM {function}(%s, %s::jsonb, {', '.join(['%s'] * (len(params) - 2))})"  # noqa: S608 - names from the command line
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        start = time.perf_counter()
        cursor.execute(sql, params)
        cursor.fetchall()
        called = time.perf_counter()
        cursor.execute("COMMIT")
        return called - start, time.perf_counter() - called


def _figures(label: str, spent: list[tuple[float, float]]) -> float:
    def stats(ms: list[float]) -> str:
        ms = sorted(ms)
        return (
            f"median {statistics.median(ms):.2f} ms, mean {statistics.fmean(ms):.2f} ms, "
            f"p90 {ms[int(len(ms) * 0.9)]:.2f} ms"
        )

    total = [(call + commit) * 1000 for call, commit in spent]
    print(f"{label}: {len(spent)} batches: {stats(total)}")
    print(f"  call   {stats([call * 1000 for call, _ in spent])}")
    print(f"  commit {stats([commit * 1000 for _, commit in spent])}")
    return statistics.median(total)


def _profile(
    function: str, wallets: list[tuple[User, str]], size: int, batches: int, rng: random.Random
) -> None:
    """auto_explain's figure for every statement the function runs, added up by statement."""
    notices: list[str] = []
    raw = connection.connection
    raw.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        for setting, value in (
            ("log_min_duration", "0"),
            ("log_analyze", "on"),
            ("log_timing", "on"),
            ("log_nested_statements", "on"),
            ("log_level", "notice"),
        ):
            cursor.execute(f"SET auto_explain.{setting} = {value}")
    calls = []
    for _ in range(batches):
        calls.append(_time_batch(function, _params(wallets, size, rng)))
    with connection.cursor() as cursor:
        cursor.execute("SET auto_explain.log_min_duration = -1")
    by_statement: dict[str, list[float]] = defaultdict(list)
    top = 0.0
    for notice in notices:
        match = re.match(r"duration: ([\d.]+) ms\s+plan:\s*Query Text: (.*?)\n(?:\S|  \S)", notice, re.S)
        if not match:
            continue
        ms, text = float(match.group(1)), " ".join(match.group(2).split())
        if text.startswith(f"SELECT * FROM {function}("):  # noqa: S608 - matched in the log, not run
            top += ms
            continue
        by_statement[text[:110]].append(ms)
    call_ms = sum(call for call, _ in calls) * 1000 / batches
    commit_ms = sum(commit for _, commit in calls) * 1000 / batches
    print(f"{function}, {batches} batches of {size} (timed with auto_explain on, so slower than without):")
    print(f"  call {call_ms:.2f} ms per batch (executor: {top / batches:.2f} ms), commit {commit_ms:.2f} ms")
    print("  per batch: ms, runs, statement (nested ones counted in their callers too)")
    for text, spent in sorted(by_statement.items(), key=lambda kv: -sum(kv[1]))[:25]:
        print(f"  {sum(spent) / batches:8.2f} {len(spent) / batches:6.0f}  {text}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=200, help="batches per measurement (default 200)")
    parser.add_argument("--wallets", type=int, default=200, help="funded wallets, one per user (default 200)")
    parser.add_argument("--size", type=int, default=100, help="transfers per batch (default 100)")
    parser.add_argument(
        "--function", default=INSTALLED, help=f"the batch function to time (default {INSTALLED})"
    )
    parser.add_argument("--compare", default="", help="two batch functions to time in alternating rounds")
    parser.add_argument("--profile", action="store_true", help="where --function's time goes, by statement")
    parser.add_argument(
        "--previous",
        action="store_true",
        help="install wallet_transfer_batch_v1 (migration 0006) for the run, and remove it after",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the batches (default 1)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    wallets = _wallets(args.wallets)
    if args.previous:
        _install(PREVIOUS)
    try:
        _run(args, wallets, rng)
    finally:
        if args.previous:
            _install(CURRENT)


def _run(args: argparse.Namespace, wallets: list[tuple[User, str]], rng: random.Random) -> None:
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    functions = args.compare.split(",") if args.compare else [args.function]
    for function in functions:  # warm-up: plans cached
        for _ in range(10):
            _time_batch(function, _params(wallets, args.size, rng))
    if args.profile:
        _profile(args.function, wallets, args.size, min(args.batches, 20), rng)
        return
    spent: dict[str, list[tuple[float, float]]] = {function: [] for function in functions}
    rounds = 10 if len(functions) > 1 else 1
    per_round = max(1, args.batches // rounds)
    for round_ in range(rounds):
        order = functions if round_ % 2 == 0 else functions[::-1]
        for function in order:
            spent[function] += [
                _time_batch(function, _params(wallets, args.size, rng)) for _ in range(per_round)
            ]
    medians = [_figures(function, spent[function]) for function in functions]
    if len(medians) == 2:
        print(f"{functions[1]} / {functions[0]} (medians of call + commit): {medians[1] / medians[0]:.3f}")


if __name__ == "__main__":
    main()
