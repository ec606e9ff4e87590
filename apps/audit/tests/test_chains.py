"""The audit trail is several hash chains: concurrent transactions don't queue behind one lock,
and the tamper evidence of each chain is as strong as that of the single chain it replaced."""

import re
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from apps.audit.chain import CHAINS, genesis_hash
from apps.audit.models import AuditLog
from apps.audit.services import audit_record

LOCK_WAIT_SECONDS = 5


def _append(entity_id: str) -> AuditLog:
    return audit_record(actor=None, action="wallet.transfer", entity_type="wallet", entity_id=entity_id)


def _transaction_chain() -> int:
    """The chain audit_record will pick in the current transaction (its id modulo CHAINS)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT mod(txid_current(), %s)::integer", [CHAINS])
        return cursor.fetchone()[0]


def test_every_chain_starts_from_its_own_genesis():
    geneses = {genesis_hash(chain) for chain in range(CHAINS)}

    assert len(geneses) == CHAINS
    assert genesis_hash(0) == "0" * 64


@pytest.mark.django_db(transaction=True)
def test_all_rows_of_one_transaction_go_to_one_chain_in_order():
    with transaction.atomic(durable=True):
        rows = [_append(f"wal_{n}") for n in range(3)]

    assert len({row.chain for row in rows}) == 1
    assert rows[1].prev_hash == rows[0].hash
    assert rows[2].prev_hash == rows[1].hash


@pytest.mark.django_db(transaction=True)
def test_consecutive_transactions_spread_over_the_chains():
    for n in range(2 * CHAINS):
        with transaction.atomic(durable=True):
            _append(f"wal_{n}")

    assert AuditLog.objects.values("chain").distinct().count() > 1
    call_command("verify_audit_chain")


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_a_transaction_holding_its_chain_does_not_block_another_chain():
    # given: a transaction that has appended (so holds its chain's lock) and has not committed
    holding, release = threading.Event(), threading.Event()
    held_chain: list[int] = []

    def holder() -> None:
        try:
            with transaction.atomic(durable=True):
                held_chain.append(_append("wal_holder").chain)
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    assert holding.wait(timeout=10)
    try:
        # when: another transaction on another chain appends (a transaction whose id happens to
        # pick the held chain is rolled back and another one started)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", [f"{LOCK_WAIT_SECONDS}s"])
        for _ in range(10):
            try:
                with transaction.atomic(durable=True):
                    if _transaction_chain() == held_chain[0]:
                        raise _SameChain
                    row = _append("wal_other")
                break
            except _SameChain:
                continue

        # then: it committed while the first still holds its chain
        assert not release.is_set()
        assert row.chain != held_chain[0]
        assert AuditLog.objects.filter(pk=row.pk).exists()
    finally:
        release.set()
        thread.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    call_command("verify_audit_chain")


class _SameChain(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_row_moved_to_another_chain_breaks_both_chains():
    # given: two chains of two rows each
    rows: dict[int, list[AuditLog]] = {}
    for _ in range(20 * CHAINS):
        if len([chain for chain in rows.values() if len(chain) >= 2]) >= 2:
            break
        with transaction.atomic(durable=True):
            row = _append("wal_x")
        rows.setdefault(row.chain, []).append(row)
    first, second = [chain for chain in rows.values() if len(chain) >= 2][:2]
    moved = first[0]
    with connection.cursor() as cursor:
        table = AuditLog._meta.db_table
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        cursor.execute(f"UPDATE {table} SET chain = %s WHERE id = %s", [second[0].chain, moved.pk])  # noqa: S608
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")

    # when / then: its old successor no longer follows anything, and it follows nothing in its new chain
    with pytest.raises(CommandError) as error:
        call_command("verify_audit_chain")
    message = str(error.value)
    assert f"chain break before id {first[1].pk}" in message
    assert re.search(rf"chain break (before id|between ids \d+ and) {moved.pk}:", message)
