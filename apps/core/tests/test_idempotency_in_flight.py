"""The Idempotency-Key contract under failure: Redis down, a request in flight, a process that
crashed holding its key, an expired key. Against real PostgreSQL and Redis (views in
`idempotent_views`)."""

import socket
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.core.cache import caches
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.core.idempotency import build_scope, request_fingerprint
from apps.core.models import IdempotencyRecord
from apps.core.tests.idempotent_views import CHARGES, executions, post, release_slow_view

pytestmark = pytest.mark.urls("apps.core.tests.idempotent_views")


# --- Redis down -----------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def _redis_unreachable(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    with pytest.raises(redis.exceptions.ConnectionError):
        caches["default"].get("probe")


@pytest.mark.django_db
@pytest.mark.usefixtures("_redis_unreachable")
def test_without_redis_a_retry_still_runs_once_and_replays(payer):
    first = post(payer, {"amount": 500})

    second = post(payer, {"amount": 500})
    reused = post(payer, {"amount": 501})

    assert first.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert reused.status_code == 422
    assert executions() == 1


# --- in flight, crashed, expired ------------------------------------------------------------------


def _post_in_thread(user: User, body: dict, results: list) -> threading.Thread:
    def run():
        try:
            client = APIClient()
            client.force_authenticate(user)
            results.append(post(client, body))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_for_started_record(timeout: float = 5.0) -> IdempotencyRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = IdempotencyRecord.objects.filter(state=IdempotencyRecord.State.STARTED).first()
        if record is not None:
            return record
        time.sleep(0.01)
    raise AssertionError("the first request never claimed its key")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_release_slow_view")
def test_claim_is_committed_before_the_view_runs_and_blocks_a_second_run(payer, payer_user, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.3
    body = {"amount": 500, "outcome": "slow"}
    results: list = []
    first = _post_in_thread(payer_user, body, results)
    record = _wait_for_started_record()  # seen from this connection while the view still runs

    while_running = post(payer, body)
    release_slow_view.set()
    first.join(timeout=10)
    after = post(payer, body)

    assert record.fingerprint == request_fingerprint(body)
    assert while_running.status_code == 409
    assert while_running.json()["error"]["type"] == "idempotency_error"
    assert while_running.json()["error"]["code"] == "idempotency_key_in_use"
    assert results[0].status_code == 201
    assert after["Idempotent-Replayed"] == "true"
    assert after.json() == results[0].json()
    assert executions() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_release_slow_view")
def test_retry_while_the_first_runs_waits_and_replays_its_response(payer, payer_user, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 10
    body = {"amount": 500, "outcome": "slow"}
    results: list = []
    first = _post_in_thread(payer_user, body, results)
    _wait_for_started_record()
    threading.Timer(0.3, release_slow_view.set).start()

    waited = post(payer, body)
    first.join(timeout=10)

    assert waited.status_code == 201
    assert waited["Idempotent-Replayed"] == "true"
    assert waited.json() == results[0].json()
    assert executions() == 1


@pytest.mark.django_db
def test_key_left_started_by_a_crashed_process_answers_409_and_is_not_rerun(payer, payer_user, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.1
    IdempotencyRecord.objects.create(
        scope=build_scope(principal=payer_user.pk, method="POST", path=CHARGES),
        key="key-1",
        fingerprint=request_fingerprint({"amount": 500}),
    )

    response = post(payer, {"amount": 500})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert executions() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["started", "completed"])
def test_expired_key_is_free_again(payer, payer_user, settings, state):
    settings.IDEMPOTENCY_TTL_HOURS = 24
    completed = {"response_status": 201, "response_body": {"id": "old"}, "completed_at": timezone.now()}
    IdempotencyRecord.objects.create(
        scope=build_scope(principal=payer_user.pk, method="POST", path=CHARGES),
        key="key-1",
        fingerprint=request_fingerprint({"amount": 999}),
        state=state,
        created_at=timezone.now() - timedelta(hours=24, seconds=1),
        **(completed if state == "completed" else {}),
    )

    response = post(payer, {"amount": 500})

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert executions() == 1
