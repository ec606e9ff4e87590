"""N identical requests with one Idempotency-Key at the same instant: one execution, N equal answers.

Real threads, each with its own PostgreSQL connection, go through the whole Django stack; the view
sleeps inside its transaction so that every other request arrives while the first still runs.
Transfers and batches (`@idempotent(atomic=True)`): the racers wait on the unique index of the
first one's uncommitted claim, then replay what it committed with its money.
"""

import threading
import time

import pytest
from django.db import connection, transaction
from django.urls import path
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.audit.models import AuditLog
from apps.core.idempotency import idempotent
from apps.core.models import IdempotencyRecord, OutboxEvent
from apps.ledger.models import JournalEntry
from apps.wallets.models import Transaction, Wallet
from apps.wallets.tests.factories import WalletFactory, fund

THREADS = 20
EXECUTED = "test.concurrent_idempotent_view_executed"
URL = "/api/v1/test/slow-charges"


class SlowChargeCreateApi(APIView):
    @idempotent
    def post(self, request):
        with transaction.atomic(durable=True):
            time.sleep(0.5)
            execution = OutboxEvent.objects.create(
                event_type=EXECUTED, aggregate_type="user", aggregate_id=request.user.pk, payload=request.data
            )
        return Response({"id": execution.id, "amount": request.data["amount"]}, status=201)


urlpatterns = [path(URL.removeprefix("/"), SlowChargeCreateApi.as_view())]


@pytest.mark.concurrency
@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_identical_concurrent_requests_with_one_key_execute_once_and_all_get_its_answer(settings):
    # Long enough that no request gives up waiting, however loaded the machine is.
    settings.IDEMPOTENCY_WAIT_SECONDS = 30
    user = User.objects.create_user("racer@example.com")
    start = threading.Barrier(THREADS)
    answers: list[tuple[int, dict, str | None]] = []

    def send() -> None:
        try:
            client = APIClient()
            client.force_authenticate(user)
            start.wait(timeout=10)
            response = client.post(
                URL, {"amount": 1500, "currency": "USD"}, format="json", headers={"Idempotency-Key": "race-1"}
            )
            answers.append((response.status_code, response.json(), response.get("Idempotent-Replayed")))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(answers) == THREADS
    assert OutboxEvent.objects.filter(event_type=EXECUTED).count() == 1
    assert {status for status, _, _ in answers} == {201}
    assert all(body == answers[0][1] for _, body, _ in answers)
    assert sorted(replayed or "" for _, _, replayed in answers) == [""] + ["true"] * (THREADS - 1)
    assert IdempotencyRecord.objects.get().state == IdempotencyRecord.State.COMPLETED


def _race(user: User, path: str, body: dict, key: str) -> list[tuple[int, dict, str | None]]:
    """THREADS identical POSTs with one key, released together; each thread has its connection."""
    start = threading.Barrier(THREADS)
    answers: list[tuple[int, dict, str | None]] = []

    def send() -> None:
        try:
            client = APIClient()
            client.force_authenticate(user)
            start.wait(timeout=10)
            response = client.post(path, body, format="json", headers={"Idempotency-Key": key})
            answers.append((response.status_code, response.json(), response.get("Idempotent-Replayed")))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def _assert_one_execution_and_replays(answers: list[tuple[int, dict, str | None]]) -> None:
    assert len(answers) == THREADS
    assert {status for status, _, _ in answers} == {201}  # no 409 (key in use), no 500
    assert all(body == answers[0][1] for _, body, _ in answers)
    assert sorted(replayed or "" for _, _, replayed in answers) == [""] + ["true"] * (THREADS - 1)


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_identical_racing_transfers_with_one_key_move_the_money_once_and_all_get_its_answer(settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 30  # however loaded the machine, no racer gives up
    source, destination = WalletFactory(), WalletFactory()
    fund(source, 1_000)
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 100}
    audit_before = AuditLog.objects.count()

    answers = _race(source.user, "/api/v1/transfers", body, "race-transfer")

    _assert_one_execution_and_replays(answers)
    assert Transaction.objects.filter(type="transfer").count() == 1
    assert JournalEntry.objects.filter(kind="transfer").count() == 1
    assert AuditLog.objects.count() == audit_before + 1
    assert Wallet.objects.get(pk=source.pk).balance == 900
    assert Wallet.objects.get(pk=destination.pk).balance == 100
    record = IdempotencyRecord.objects.get(key="race-transfer")
    assert (record.state, record.response_body) == (IdempotencyRecord.State.COMPLETED, answers[0][1])


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_identical_racing_batches_with_one_key_move_the_money_once_and_all_get_its_answer(settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 30
    source, first, second = WalletFactory(), WalletFactory(), WalletFactory()
    fund(source, 1_000)
    body = {
        "transfers": [
            {"source_wallet": source.pk, "destination_wallet": first.pk, "amount": 100},
            {"source_wallet": source.pk, "destination_wallet": second.pk, "amount": 50},
        ]
    }

    answers = _race(source.user, "/api/v1/transfers/batch", body, "race-batch")

    _assert_one_execution_and_replays(answers)
    assert answers[0][1]["failed"] == 0
    assert Transaction.objects.filter(type="transfer").count() == 2
    assert JournalEntry.objects.filter(kind="transfer").count() == 2
    assert [Wallet.objects.get(pk=w.pk).balance for w in (source, first, second)] == [850, 100, 50]
    assert IdempotencyRecord.objects.get(key="race-batch").state == IdempotencyRecord.State.COMPLETED
