"""The Idempotency-Key contract of API.md, proven against real PostgreSQL and Redis.

The views of `idempotent_views` stand for a money-moving endpoint: each execution leaves a visible
row (an OutboxEvent of type EXECUTED, written in its own transaction), so "ran once" is a row
count. Concurrency, crashes, expiry and Redis outages: test_idempotency_in_flight.py.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.core.idempotency import build_scope, is_stored, request_fingerprint
from apps.core.models import IdempotencyRecord
from apps.core.tasks import purge_idempotency_records
from apps.core.tests import idempotent_views
from apps.core.tests.idempotent_views import CHARGES, OTHER_CHARGES, executions, post
from tests.cache import empty_cache

pytestmark = pytest.mark.urls("apps.core.tests.idempotent_views")


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
    empty_cache()

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
        empty_cache()

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


@pytest.mark.django_db
@pytest.mark.parametrize(("outcome", "status"), [("refused_early", 400), ("crash_early", 500)])
def test_an_error_whose_work_rolled_back_releases_the_key_so_the_retry_runs(payer, outcome, status):
    failed = post(payer, {"amount": 500, "outcome": outcome})

    assert failed.status_code == status
    assert executions() == 0
    assert not IdempotencyRecord.objects.exists()

    retried = post(payer, {"amount": 500, "outcome": outcome})

    assert retried.status_code == status
    assert "Idempotent-Replayed" not in retried
    assert executions() == 0
    assert not IdempotencyRecord.objects.exists()


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
    schema = SchemaGenerator(patterns=idempotent_views.urlpatterns).get_schema(request=None, public=True)

    parameters = schema["paths"][CHARGES]["post"]["parameters"]

    assert [(p["name"], p["in"], p.get("required", False)) for p in parameters] == [
        ("Idempotency-Key", "header", False)
    ]
    assert "requestBody" in schema["paths"][CHARGES]["post"]  # the view's own annotations survive
