"""Issue 16: a transfer's idempotency claim, its money and its stored response are one transaction.

A racing request with the same key waits on the claim's unique index (bounded), never on a
committed `started` row; a refusal keeps no key; the services stay durable for every other caller.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from apps.core.models import IdempotencyRecord
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import wallet_transfer
from apps.wallets.tests.conftest import money_state
from apps.wallets.tests.factories import WalletFactory, fund

KEY = "rent-2027-01"


def _waiting_on_a_lock() -> int:
    """Sessions of this test database blocked on a lock (a row lock or another transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class _HeldWallet:
    """Another session holds a wallet's row lock (FOR UPDATE) until released."""

    def __init__(self, wallet_id: str) -> None:
        self.locked, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(wallet_id,))

    def _hold(self, wallet_id: str) -> None:
        try:
            with transaction.atomic():
                Wallet.objects.select_for_update().get(pk=wallet_id)
                self.locked.set()
                self.release.wait(timeout=30)
        finally:
            connection.close()

    def __enter__(self) -> _HeldWallet:
        self.thread.start()
        assert self.locked.wait(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(timeout=30)


def _post_in_thread(client, body, answers: list) -> threading.Thread:
    def send() -> None:
        try:
            answers.append(client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY))
        finally:
            connection.close()

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_running_transfer_holds_its_key_uncommitted_and_a_racer_waits_bounded_then_gets_409(
    client_for, settings
):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.3
    source, destination = WalletFactory(), WalletFactory()
    fund(source, 1_000)
    client = client_for(source.user)
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 100}
    first: list = []

    with _HeldWallet(destination.pk):
        thread = _post_in_thread(client_for(source.user), body, first)
        _until(lambda: _waiting_on_a_lock() == 1)  # the transfer waits for the wallet, key claimed

        # Nothing of the running request is committed: not even its claim.
        assert not IdempotencyRecord.objects.filter(key=KEY).exists()
        started = time.monotonic()
        racer = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
        waited = time.monotonic() - started

        assert racer.status_code == 409
        assert racer.json()["error"]["code"] == "idempotency_key_in_use"
        assert waited >= 0.3  # it waited on the claim's index, as long as it is allowed to
        assert Transaction.objects.filter(type="transfer").count() == 0
    thread.join(timeout=30)

    assert first[0].status_code == 201, first[0].json()
    replayed = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert (replayed.status_code, replayed["Idempotent-Replayed"]) == (201, "true")
    assert replayed.json() == first[0].json()
    assert Transaction.objects.filter(type="transfer").count() == 1
    assert Wallet.objects.get(pk=source.pk).balance == 900


@pytest.mark.django_db(transaction=True)
def test_a_racer_waiting_on_the_key_replays_the_answer_committed_with_the_money(client_for, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 30
    source, destination = WalletFactory(), WalletFactory()
    fund(source, 1_000)
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 100}
    first: list = []
    second: list = []

    with _HeldWallet(destination.pk):
        threads = [_post_in_thread(client_for(source.user), body, first)]
        _until(lambda: _waiting_on_a_lock() == 1)
        threads.append(_post_in_thread(client_for(source.user), body, second))
        _until(lambda: _waiting_on_a_lock() == 2)  # the racer waits on the uncommitted claim
    for thread in threads:
        thread.join(timeout=30)

    assert (first[0].status_code, second[0].status_code) == (201, 201)
    assert "Idempotent-Replayed" not in first[0]
    assert second[0]["Idempotent-Replayed"] == "true"
    assert second[0].json() == first[0].json()
    assert Transaction.objects.filter(type="transfer").count() == 1
    assert Wallet.objects.get(pk=source.pk).balance == 900


@pytest.mark.django_db
def test_a_transfer_refused_for_insufficient_funds_keeps_no_key_so_the_same_key_runs_after_a_deposit(
    client_for,
):
    source, destination = WalletFactory(), WalletFactory()
    fund(source, 50)
    client = client_for(source.user)
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 100}
    before = money_state()

    refused = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "insufficient_funds"
    assert money_state() == before
    assert not IdempotencyRecord.objects.filter(key=KEY).exists()

    fund(source, 50)
    retried = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried
    assert Wallet.objects.get(pk=source.pk).balance == 0
    assert IdempotencyRecord.objects.get(key=KEY).response_status == 201


@pytest.mark.django_db(transaction=True)
def test_the_transfer_service_stays_durable_outside_an_idempotent_request():
    source, destination = WalletFactory(), WalletFactory()
    fund(source, 1_000)

    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        wallet_transfer(
            actor=None,
            user=source.user,
            source_wallet_id=source.pk,
            destination_wallet_id=destination.pk,
            amount=100,
        )

    assert Transaction.objects.filter(type="transfer").count() == 0
    assert Wallet.objects.get(pk=source.pk).balance == 1_000
