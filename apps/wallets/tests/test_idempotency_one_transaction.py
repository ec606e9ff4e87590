"""Issue 16: a transfer's idempotency claim, its money and its stored response are one transaction.

A racing request with the same key waits on the claim's unique index (bounded), never on a
committed `started` row; a refusal keeps no key; the services stay durable for every other caller.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.urls import path
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.core.idempotency import durable_atomic, idempotent
from apps.core.models import IdempotencyRecord, OutboxEvent
from apps.wallets.locks import retry_on_lock_conflict
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import wallet_transfer
from apps.wallets.tests.conftest import money_state
from apps.wallets.tests.factories import WalletFactory, fund

KEY = "rent-2027-01"
LOCK_PAIR = "/api/v1/test/lock-pairs"
LOCKED = "test.lock_pair_locked"

_deadlock = threading.Barrier(2)
_attempts: list[str] = []


@retry_on_lock_conflict(attempts=3)
@durable_atomic
def _lock_pair(*, first: str, second: str) -> OutboxEvent:
    """A service that takes two row locks in the order it is given (what lock_wallets prevents)."""
    _attempts.append(first)
    Wallet.objects.select_for_update().get(pk=first)
    if len(_attempts) <= 2:
        _deadlock.wait(timeout=10)  # both requests hold their first row before asking for the second
    Wallet.objects.select_for_update().get(pk=second)
    return OutboxEvent.objects.create(
        event_type=LOCKED, aggregate_type="wallet", aggregate_id=first, payload={}
    )


class LockPairApi(APIView):
    @idempotent(atomic=True)
    def post(self, request):
        event = _lock_pair(first=request.data["first"], second=request.data["second"])
        return Response({"event": event.pk}, status=201)


class LockTimeoutApi(APIView):
    @idempotent(atomic=True)
    def post(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('lock_timeout')")
            return Response({"lock_timeout": cursor.fetchone()[0]}, status=201)


urlpatterns = [
    path(LOCK_PAIR.removeprefix("/"), LockPairApi.as_view()),
    path("api/v1/test/lock-timeouts", LockTimeoutApi.as_view()),
]


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


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_a_deadlocked_idempotent_request_reruns_its_whole_transaction_claim_included():
    """PostgreSQL aborts one of two requests that lock in opposite orders (40P01). The service
    joined the request's transaction, so it cannot rerun alone in an aborted transaction: the
    request's transaction reruns whole, claim included, and both answer 201 once each."""
    a, b = WalletFactory(), WalletFactory()
    _attempts.clear()
    _deadlock.reset()
    answers: dict[str, object] = {}

    def send(key: str, first: str, second: str) -> None:
        try:
            client = APIClient()
            client.force_authenticate(a.user)
            body = {"first": first, "second": second}
            answers[key] = client.post(LOCK_PAIR, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=("ab", a.pk, b.pk)),
        threading.Thread(target=send, args=("ba", b.pk, a.pk)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert {key: response.status_code for key, response in answers.items()} == {"ab": 201, "ba": 201}
    assert len(_attempts) == 3  # two first tries, one aborted by the deadlock and rerun
    assert OutboxEvent.objects.filter(event_type=LOCKED).count() == 2  # the aborted try left nothing
    records = IdempotencyRecord.objects.order_by("key")
    assert [(r.key, r.state, r.response_body) for r in records] == [
        (key, IdempotencyRecord.State.COMPLETED, answers[key].json()) for key in ("ab", "ba")
    ]


@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_only_the_claim_is_bounded_by_the_idempotency_wait_not_the_work(settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.3
    client = APIClient()
    client.force_authenticate(WalletFactory().user)
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        session_default = cursor.fetchone()[0]

    response = client.post("/api/v1/test/lock-timeouts", {}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert response.status_code == 201
    assert response.json() == {"lock_timeout": session_default}  # the work waits for locks as ever
    assert IdempotencyRecord.objects.get(key=KEY).state == IdempotencyRecord.State.COMPLETED


@pytest.mark.django_db
def test_a_transfer_keeps_its_answer_in_postgresql_only_and_a_replay_reads_it_from_there(client_for):
    """The one-transaction claim finds a replay in the statement that claims a new key, so a new
    request spends no Redis round trip on idempotency: nothing is cached, and a replay (with a
    different body: refused) answers from the stored row."""
    from django.core.cache import cache

    source, destination = WalletFactory(), WalletFactory()
    fund(source, 1_000)
    client = client_for(source.user)
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 100}

    first = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert first.status_code == 201
    assert cache.keys("idempotency:*") == []
    stored = IdempotencyRecord.objects.get(key=KEY)
    assert (stored.state, stored.response_status, stored.response_body) == ("completed", 201, first.json())

    replayed = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    reused = client.post("/api/v1/transfers", {**body, "amount": 5}, format="json", HTTP_IDEMPOTENCY_KEY=KEY)

    assert (replayed.status_code, replayed["Idempotent-Replayed"], replayed.json()) == (
        201,
        "true",
        first.json(),
    )
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert Transaction.objects.filter(type="transfer").count() == 1
    assert Wallet.objects.get(pk=source.pk).balance == 900
