import threading
import time

import pytest
from django.db import OperationalError, connection, transaction

from apps.wallets.locks import lock_wallets, retry_on_lock_conflict
from apps.wallets.models import Wallet
from apps.wallets.tests.factories import WalletFactory


@pytest.mark.django_db
def test_lock_wallets_returns_the_existing_rows_by_id():
    a, b = WalletFactory(), WalletFactory()

    locked = lock_wallets([b.pk, a.pk, "wal_missing"])

    assert set(locked) == {a.pk, b.pk}
    assert locked[a.pk].ledger_account_id == a.ledger_account_id


@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_is_retried_so_both_callers_succeed():
    """Locks taken in opposite orders (what lock_wallets prevents) deadlock for real; PostgreSQL
    aborts one transaction with 40P01 and the decorator reruns it."""
    a, b = WalletFactory(), WalletFactory()
    attempts: list[str] = []
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    @retry_on_lock_conflict(attempts=3)
    @transaction.atomic(durable=True)
    def lock_in_order(first: str, second: str) -> None:
        attempts.append(first)
        Wallet.objects.select_for_update().get(pk=first)
        if len(attempts) <= 2:
            barrier.wait(timeout=10)  # both hold their first row before asking for the second
        Wallet.objects.select_for_update().get(pk=second)
        time.sleep(0.05)

    def run(first: str, second: str) -> None:
        try:
            lock_in_order(first, second)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in ((a.pk, b.pk), (b.pk, a.pk))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(attempts) == 3  # two first tries, one of them aborted by the deadlock and rerun


@pytest.mark.django_db(transaction=True)
def test_other_operational_errors_are_not_retried():
    calls: list[int] = []

    @retry_on_lock_conflict(attempts=3)
    def broken() -> None:
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 1; SELECT pg_sleep(0.1)")

    try:
        with pytest.raises(OperationalError):
            broken()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
    assert calls == [1]
