"""N identical requests with one Idempotency-Key at the same instant: one execution, N equal answers.

Real threads, each with its own PostgreSQL connection, go through the whole Django stack; the view
sleeps inside its transaction so that every other request arrives while the first still runs.
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
from apps.core.idempotency import idempotent
from apps.core.models import IdempotencyRecord, OutboxEvent

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
