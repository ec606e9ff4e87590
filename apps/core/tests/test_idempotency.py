"""The Idempotency-Key contract of API.md, proven against real PostgreSQL and Redis.

The views below stand for a money-moving endpoint: each execution leaves a visible row (an
OutboxEvent of type EXECUTED, written in its own transaction), so "ran once" is a row count.
"""

import socket
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.core.cache import caches
from django.db import connection, transaction
from django.urls import path
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.accounts.models import User
from apps.core.errors import InvalidRequest
from apps.core.fields import AmountField
from apps.core.idempotency import build_scope, idempotent, is_stored, request_fingerprint
from apps.core.models import IdempotencyRecord, OutboxEvent
from apps.core.tasks import purge_idempotency_records

EXECUTED = "test.idempotent_view_executed"
CHARGES = "/api/v1/test/charges"
OTHER_CHARGES = "/api/v1/test/other-charges"

# Holds the "slow" outcome inside the view until a test lets it finish.
release_slow_view = threading.Event()


class ChargeCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        amount = AmountField()
        outcome = serializers.ChoiceField(choices=["ok", "declined", "crash", "slow"], default="ok")

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT})
    @idempotent
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["outcome"] == "slow":
            release_slow_view.wait(timeout=10)
        execution = _record_execution(principal=request.user.pk, amount=data["amount"])
        if data["outcome"] == "declined":
            raise InvalidRequest("The wallet balance is too low.", code="insufficient_funds", param="amount")
        if data["outcome"] == "crash":
            raise RuntimeError("the process fell over after the work was committed")
        return Response({"id": execution.id, "amount": data["amount"]}, status=201)


def _record_execution(*, principal: str, amount: int) -> OutboxEvent:
    with transaction.atomic(durable=True):
        return OutboxEvent.objects.create(
            event_type=EXECUTED, aggregate_type="user", aggregate_id=principal, payload={"amount": amount}
        )


urlpatterns = [
    path(CHARGES.removeprefix("/"), ChargeCreateApi.as_view()),
    path(OTHER_CHARGES.removeprefix("/"), ChargeCreateApi.as_view()),
]

pytestmark = pytest.mark.urls(__name__)


def executions() -> int:
    return OutboxEvent.objects.filter(event_type=EXECUTED).count()


@pytest.fixture
def user():
    return User.objects.create_user("payer@example.com")


@pytest.fixture
def payer(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post(client: APIClient, body, *, key: str | None = "key-1", url: str = CHARGES):
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(url, body, format="json", headers=headers)


@pytest.fixture
def _release_slow_view():
    release_slow_view.clear()
    yield
    release_slow_view.set()


# --- replay -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_retry_with_same_key_and_body_replays_first_response_without_running_again(payer):
    first = post(payer, {"amount": 500})

    second = post(payer, {"amount": 500})

    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert executions() == 1


@pytest.mark.django_db
def test_body_with_keys_in_another_order_is_the_same_request(payer):
    first = payer.post(
        CHARGES,
        '{"amount": 500, "outcome": "ok"}',
        content_type="application/json",
        headers={"Idempotency-Key": "k"},
    )

    second = payer.post(
        CHARGES,
        '{"outcome":"ok","amount":500}',
        content_type="application/json",
        headers={"Idempotency-Key": "k"},
    )

    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert executions() == 1


@pytest.mark.django_db
def test_requests_without_a_key_run_every_time(payer):
    post(payer, {"amount": 500}, key=None)
    second = post(payer, {"amount": 500}, key=None)

    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second
    assert executions() == 2


@pytest.mark.django_db
def test_cached_replay_costs_no_database_query(payer, django_assert_num_queries):
    first = post(payer, {"amount": 500})

    with django_assert_num_queries(0):
        second = post(payer, {"amount": 500})

    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()


@pytest.mark.django_db
def test_replay_comes_from_postgresql_when_the_cache_lost_it(payer):
    first = post(payer, {"amount": 500})
    caches["default"].clear()

    second = post(payer, {"amount": 500})

    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert executions() == 1


# --- reuse with another body, invalid keys ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("cache_cleared", [False, True], ids=["from-cache", "from-postgresql"])
def test_same_key_with_a_different_body_is_refused_with_422(payer, cache_cleared):
    post(payer, {"amount": 500})
    if cache_cleared:
        caches["default"].clear()

    response = post(payer, {"amount": 501})

    assert response.status_code == 422
    assert response.json()["error"]["type"] == "idempotency_error"
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert executions() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tkey", "caf\u00e9", "new\nline", "\x7f"], ids=repr)
def test_invalid_keys_are_refused_with_400_and_nothing_runs(payer, key):
    response = post(payer, {"amount": 500}, key=key)

    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "code": "idempotency_key_invalid",
        "message": "Idempotency-Key must be 1 to 255 printable ASCII characters.",
        "param": "Idempotency-Key",
    }
    assert executions() == 0
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["a", "x" * 255, "order 42/retry:1 ~!@#$%^&*()"])
def test_any_printable_ascii_key_up_to_255_chars_is_accepted(payer, key):
    response = post(payer, {"amount": 500}, key=key)

    assert response.status_code == 201
    assert IdempotencyRecord.objects.get().key == key


# --- what is stored and what is not -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad_body", "code"),
    [({"amount": 0}, "parameter_invalid"), ({}, "parameter_missing")],
    ids=["invalid", "missing"],
)
def test_validation_failure_is_not_stored_so_a_corrected_retry_with_the_key_runs(payer, bad_body, code):
    rejected = post(payer, bad_body)

    corrected = post(payer, {"amount": 500})

    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == code
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected
    assert executions() == 1


@pytest.mark.django_db
def test_unparseable_body_renders_the_usual_400_and_is_not_stored(payer):
    rejected = payer.post(
        CHARGES, '{"amount": ', content_type="application/json", headers={"Idempotency-Key": "key-1"}
    )

    corrected = post(payer, {"amount": 500})

    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == "invalid_json"
    assert corrected.status_code == 201
    assert executions() == 1


@pytest.mark.django_db
def test_domain_error_after_work_is_stored_and_replayed(payer):
    declined = post(payer, {"amount": 500, "outcome": "declined"})

    replayed = post(payer, {"amount": 500, "outcome": "declined"})

    assert declined.status_code == 400
    assert declined.json()["error"]["code"] == "insufficient_funds"
    assert replayed.status_code == 400
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == declined.json()
    assert executions() == 1


@pytest.mark.django_db
def test_server_error_is_stored_so_a_retry_cannot_run_the_work_twice(payer):
    crashed = post(payer, {"amount": 500, "outcome": "crash"})

    replayed = post(payer, {"amount": 500, "outcome": "crash"})

    assert crashed.status_code == 500
    assert crashed.json()["error"]["type"] == "api_error"
    assert replayed.status_code == 500
    assert replayed["Idempotent-Replayed"] == "true"
    assert replayed.json() == crashed.json()
    assert executions() == 1


@pytest.mark.parametrize(
    ("status", "body", "stored"),
    [
        (201, {"id": "txn_1"}, True),
        (200, None, True),
        (400, {"error": {"code": "insufficient_funds"}}, True),
        (400, {"error": {"code": "parameter_invalid"}}, False),
        (400, {"error": {"code": "parameter_missing"}}, False),
        (400, {"error": {"code": "invalid_json"}}, False),
        (401, {"error": {"code": "authentication_failed"}}, False),
        (403, {"error": {"code": "permission_denied"}}, False),
        (404, {"error": {"code": "resource_missing"}}, False),
        (405, {"error": {"code": "method_not_allowed"}}, False),
        (409, {"error": {"code": "payment_unexpected_state"}}, True),
        (413, {"error": {"code": "request_too_large"}}, False),
        (415, {"error": {"code": "unsupported_media_type"}}, False),
        (422, {"error": {"code": "anything"}}, True),
        (429, {"error": {"code": "rate_limited"}}, False),
        (500, {"error": {"code": "internal_error"}}, True),
        (503, {"error": {"code": "service_unavailable"}}, True),
    ],
)
def test_only_rejections_before_any_work_are_left_unstored(status, body, stored):
    assert is_stored(status, body) is stored


# --- scope ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_same_key_from_two_principals_runs_twice(payer):
    other = APIClient()
    other.force_authenticate(User.objects.create_user("other@example.com"))

    mine = post(payer, {"amount": 500})
    theirs = post(other, {"amount": 500})

    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["id"] != mine.json()["id"]
    assert executions() == 2


@pytest.mark.django_db
def test_same_key_on_two_endpoints_runs_twice(payer):
    post(payer, {"amount": 500}, url=CHARGES)
    other = post(payer, {"amount": 500}, url=OTHER_CHARGES)

    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other
    assert executions() == 2


def test_scope_of_an_overlong_path_stays_within_the_column_and_distinct():
    long_a = build_scope(principal="usr_1", method="post", path="/api/v1/" + "a" * 400)
    long_b = build_scope(principal="usr_1", method="post", path="/api/v1/" + "a" * 399 + "b")

    assert len(long_a) == len(long_b) == 255
    assert long_a != long_b
    assert (
        build_scope(principal="usr_1", method="post", path="/api/v1/transfers")
        == "usr_1 POST /api/v1/transfers"
    )


def test_fingerprint_ignores_key_order_but_not_values():
    assert request_fingerprint({"a": 1, "b": [1, 2]}) == request_fingerprint({"b": [1, 2], "a": 1})
    assert request_fingerprint({"a": 1}) != request_fingerprint({"a": 2})
    assert request_fingerprint({"a": "\ud800"}) != request_fingerprint({"a": "x"})


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
def test_claim_is_committed_before_the_view_runs_and_blocks_a_second_run(payer, user, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.3
    body = {"amount": 500, "outcome": "slow"}
    results: list = []
    first = _post_in_thread(user, body, results)
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
def test_retry_while_the_first_runs_waits_and_replays_its_response(payer, user, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 10
    body = {"amount": 500, "outcome": "slow"}
    results: list = []
    first = _post_in_thread(user, body, results)
    _wait_for_started_record()
    threading.Timer(0.3, release_slow_view.set).start()

    waited = post(payer, body)
    first.join(timeout=10)

    assert waited.status_code == 201
    assert waited["Idempotent-Replayed"] == "true"
    assert waited.json() == results[0].json()
    assert executions() == 1


@pytest.mark.django_db
def test_key_left_started_by_a_crashed_process_answers_409_and_is_not_rerun(payer, user, settings):
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.1
    IdempotencyRecord.objects.create(
        scope=build_scope(principal=user.pk, method="POST", path=CHARGES),
        key="key-1",
        fingerprint=request_fingerprint({"amount": 500}),
    )

    response = post(payer, {"amount": 500})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert executions() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["started", "completed"])
def test_expired_key_is_free_again(payer, user, settings, state):
    settings.IDEMPOTENCY_TTL_HOURS = 24
    completed = {"response_status": 201, "response_body": {"id": "old"}, "completed_at": timezone.now()}
    IdempotencyRecord.objects.create(
        scope=build_scope(principal=user.pk, method="POST", path=CHARGES),
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


# --- purge ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_purge_deletes_only_records_older_than_the_ttl(settings):
    settings.IDEMPOTENCY_TTL_HOURS = 24
    now = timezone.now()
    ages = {"expired-started": 25, "expired-completed": 24 * 3, "fresh-started": 1, "fresh-completed": 23}
    for key, hours in ages.items():
        extra = (
            {"state": "completed", "response_status": 201, "completed_at": now} if "completed" in key else {}
        )
        IdempotencyRecord.objects.create(
            scope="usr_1 POST /x", key=key, fingerprint="f", created_at=now - timedelta(hours=hours), **extra
        )

    purged = purge_idempotency_records()

    assert purged == 2
    assert set(IdempotencyRecord.objects.values_list("key", flat=True)) == {
        "fresh-started",
        "fresh-completed",
    }


# --- schema ---------------------------------------------------------------------------------------


def test_idempotency_key_header_is_documented_in_the_schema():
    schema = SchemaGenerator(patterns=urlpatterns).get_schema(request=None, public=True)

    parameters = schema["paths"][CHARGES]["post"]["parameters"]

    assert [(p["name"], p["in"], p.get("required", False)) for p in parameters] == [
        ("Idempotency-Key", "header", False)
    ]
    assert "requestBody" in schema["paths"][CHARGES]["post"]  # the view's own annotations survive
