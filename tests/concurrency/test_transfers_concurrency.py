"""Transfers under real concurrency: threads with their own PostgreSQL connections.

Ordered FOR UPDATE locks must make these safe without help: the tests also check that no
deadlock/serialization retry (apps.wallets.locks.retry_on_lock_conflict) was ever needed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from rest_framework.test import APIClient

from apps.wallets.errors import InsufficientFunds
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import wallet_transfer
from apps.wallets.tests.factories import WalletFactory, fund

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Runs work(i) in `count` threads started together; returns what they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def _no_lock_retries(caplog) -> bool:
    return not [r for r in caplog.records if r.name == "apps.wallets.locks"]


def test_random_transfers_never_overdraw_and_keep_the_books(caplog):
    caplog.set_level(logging.WARNING, logger="apps.wallets.locks")
    wallets = [WalletFactory() for _ in range(5)]
    for wallet in wallets:
        fund(wallet, 1_000)
    ids = [w.pk for w in wallets]
    owners = {w.pk: w.user for w in wallets}
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def work(index: int) -> None:
        rng = random.Random(index)
        for _ in range(40):
            source, destination = rng.sample(ids, 2)
            try:
                wallet_transfer(
                    actor=None,
                    user=owners[source],
                    source_wallet_id=source,
                    destination_wallet_id=destination,
                    amount=rng.randint(1, 400),
                )
                outcome = "completed"
            except InsufficientFunds:
                outcome = "insufficient_funds"
            with lock:
                outcomes[outcome] += 1

    errors = run_threads(8, work)

    assert errors == []
    assert sum(outcomes.values()) == 8 * 40
    assert outcomes["completed"] > 0
    balances = dict(Wallet.objects.values_list("pk", "balance"))
    assert min(balances.values()) >= 0
    assert sum(balances.values()) == 5 * 1_000
    assert Transaction.objects.filter(type="transfer").count() == outcomes["completed"]
    for wallet_id, balance in balances.items():
        sent = Transaction.objects.filter(type="transfer", source_wallet_id=wallet_id).aggregate(
            s=Sum("amount")
        )["s"]
        received = Transaction.objects.filter(type="transfer", destination_wallet_id=wallet_id).aggregate(
            s=Sum("amount")
        )["s"]
        assert balance == 1_000 - (sent or 0) + (received or 0)
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "ledger OK: 5 wallets" in out.getvalue()
    assert _no_lock_retries(caplog)


def test_opposite_transfers_in_a_tight_loop_never_fail_the_caller(caplog):
    caplog.set_level(logging.WARNING, logger="apps.wallets.locks")
    a, b = WalletFactory(), WalletFactory()
    fund(a, 100_000)
    fund(b, 100_000)
    directions = [(a, b), (b, a)]
    statuses: list[tuple[int, str]] = []

    def work(index: int) -> None:
        source, destination = directions[index % 2]
        client = APIClient()
        client.force_authenticate(user=source.user)
        for _ in range(30):
            response = client.post(
                "/api/v1/transfers",
                {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 7},
                format="json",
            )
            statuses.append((response.status_code, response.content.decode()[:200]))

    errors = run_threads(4, work)

    assert errors == []
    assert [s for s in statuses if s[0] != 201] == []
    assert len(statuses) == 4 * 30
    assert Wallet.objects.aggregate(total=Sum("balance"))["total"] == 200_000
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()
    assert _no_lock_retries(caplog)


def _session(**overrides) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        **overrides,
    )


def test_both_wallets_are_locked_in_id_order_whichever_side_sends():
    """The transfer function locks the lower id first even when it is the destination.

    Another session holds the higher-id wallet (the sender). The transfer must already hold the
    lower-id wallet while it waits for the higher one: a third session finds it locked. Locked
    the other way round (sender first), the lower one would still be free.
    """
    a, b = WalletFactory(), WalletFactory()
    high, low = sorted([a, b], key=lambda w: w.pk, reverse=True)
    fund(high, 10)
    blocker, probe = _session(), _session(autocommit=True)
    outcome: list[object] = []
    try:
        blocker.execute("SELECT id FROM wallets_wallet WHERE id = %s FOR UPDATE", [high.pk])

        def send() -> None:
            try:
                outcome.append(
                    wallet_transfer(
                        actor=high.user,
                        user=high.user,
                        source_wallet_id=high.pk,
                        destination_wallet_id=low.pk,
                        amount=10,
                    )
                )
            except BaseException as exc:
                outcome.append(exc)
            finally:
                connection.close()

        sender = threading.Thread(target=send)
        sender.start()
        for _ in range(200):  # until the transfer waits on the blocked row
            waiting = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                ["%wallet_transfer_v%"],
            ).fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the transfer never waited for the locked sender")

        with pytest.raises(psycopg.errors.LockNotAvailable):
            probe.execute("SELECT id FROM wallets_wallet WHERE id = %s FOR UPDATE NOWAIT", [low.pk])
    finally:
        blocker.rollback()
        blocker.close()
        probe.close()
    sender.join(timeout=30)

    assert len(outcome) == 1
    assert isinstance(outcome[0], Transaction)
    high.refresh_from_db()
    low.refresh_from_db()
    assert (high.balance, low.balance) == (0, 10)


def test_batches_in_opposite_wallet_orders_with_single_transfers_never_deadlock_or_overdraw(caplog):
    """Batches A->B,A->C and B->A,B->C and C->B,C->A race each other and single transfers: every
    batch locks all its wallets once in id order, so nothing deadlocks, nothing overdraws, and each
    refusal is an item's insufficient_funds, never an error."""
    caplog.set_level(logging.WARNING, logger="apps.wallets.locks")
    a, b, c = (WalletFactory() for _ in range(3))
    for wallet in (a, b, c):
        fund(wallet, 3_000)
    batches = [
        [(a, b), (a, c)] * 5,
        [(b, a), (b, c)] * 5,
        [(c, b), (c, a)] * 5,
    ]
    outcomes: list[tuple[int, dict]] = []

    def work(index: int) -> None:
        items = batches[index % 3]
        source = items[0][0]
        client = APIClient()
        client.force_authenticate(user=source.user)
        for round_ in range(6):
            body = {
                "atomic": index % 2 == 0,
                "transfers": [
                    {"source_wallet": s.pk, "destination_wallet": d.pk, "amount": 97 + round_}
                    for s, d in (list(reversed(items)) if round_ % 2 else items)
                ],
            }
            response = client.post(
                "/api/v1/transfers/batch", body, format="json", HTTP_IDEMPOTENCY_KEY=f"{index}-{round_}"
            )
            outcomes.append((response.status_code, response.json()))
            single = client.post(
                "/api/v1/transfers",
                {"source_wallet": source.pk, "destination_wallet": items[1][1].pk, "amount": 13},
                format="json",
            )
            outcomes.append((single.status_code, single.json()))

    errors = run_threads(6, work)

    assert errors == []
    codes = Counter(body.get("error", {}).get("code") if status != 201 else "ok" for status, body in outcomes)
    assert set(codes) <= {"ok", "insufficient_funds"}, codes
    item_codes = {
        item["error"]["code"]
        for status, body in outcomes
        if status == 201 and "failed" in body
        for item in body["data"]
        if "error" in item
    }
    assert item_codes <= {"insufficient_funds"}
    assert Wallet.objects.filter(balance__lt=0).count() == 0
    assert Wallet.objects.aggregate(total=Sum("balance"))["total"] == 9_000
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()
    assert _no_lock_retries(caplog)
