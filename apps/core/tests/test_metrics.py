"""/api/v1/metrics follows what happens: a scripted day of payments, transfers, a review, a stuck outbox.

Instruments live for the whole test process, so every assertion is on how much a value moved.
The scenario commits for real (`transactional_db`): decisions and outbox hand-offs happen after
commit.
"""

import uuid
from datetime import timedelta

import pytest
from django.db import connections
from prometheus_client.parser import text_string_to_metric_families

from apps.core import outbox
from tests.workers import tasks_published_to

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/api/v1/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


class Moved:
    """How far each sample moved between two scrapes (absent counts as 0)."""

    def __init__(self, before: dict, after: dict) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return self.after.get(key, 0) - self.before.get(key, 0)


def now(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0)


def _post(client, path: str, body: dict):
    response = client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)
    assert response.status_code in (200, 201), response.content
    return response.json()


@pytest.fixture
def no_metrics_cache(settings):
    settings.METRICS_DB_CACHE_SECONDS = 0


def test_business_metrics_follow_a_scripted_scenario(
    client, auth_client, reviewer_client, settings, no_metrics_cache
):
    settings.PAYMENT_RETRY_MAX_ATTEMPTS = 1  # a transient gateway error is dead-lettered at once
    before = scrape(client)

    # given: two card payments, a decline, one held for review, one lost to gateway errors
    for token in (
        "tok_visa",
        "tok_mastercard",
        "tok_chargeDeclined",
        "tok_riskLevelElevated",
        "tok_transientError",
    ):
        _post(auth_client, "/api/v1/payments", {"amount": 1500, "currency": "USD", "payment_method": token})
    # and a deposit and a transfer between two wallets
    source = _post(auth_client, "/api/v1/wallets", {"currency": "EUR"})
    _post(
        auth_client,
        f"/api/v1/wallets/{source['id']}/deposits",
        {"amount": 5000, "payment_method": "tok_visa"},
    )
    other = _post(reviewer_client, "/api/v1/wallets", {"currency": "EUR"})
    _post(
        auth_client,
        "/api/v1/transfers",
        {"source_wallet": source["id"], "destination_wallet": other["id"], "amount": 1200},
    )
    held = scrape(client)
    moved = Moved(before, held)

    # then payments by status and gateway
    assert moved("paydesk_payments", status="succeeded", gateway="simulated") == 2
    assert moved("paydesk_payments", status="failed", gateway="simulated") == 2
    assert moved("paydesk_payments", status="in_review", gateway="simulated") == 1
    # the review queue holds one payment; the gateway was called once per card payment and once for
    # the deposit (deposits take the same gateway path)
    assert now(held, "paydesk_review_queue_size") == 1
    assert now(held, "paydesk_review_queue_oldest_age_seconds") >= 0
    calls = "paydesk_gateway_request_duration_seconds_count"
    assert moved(calls, gateway="simulated", operation="authorize", outcome="captured") == 3
    assert moved(calls, gateway="simulated", operation="authorize", outcome="failed") == 1
    assert moved(calls, gateway="simulated", operation="authorize", outcome="authorized") == 1
    assert moved(calls, gateway="simulated", operation="authorize", outcome="retryable_error") == 1
    # the ledger: two captures, the deposit, the transfer
    assert moved("paydesk_ledger_entries_total", kind="payment_capture") == 2
    assert moved("paydesk_ledger_entries_total", kind="deposit") == 1
    assert moved("paydesk_ledger_entries_total", kind="transfer") == 1
    # the payment whose retries ran out is a dead letter; every event was delivered (eager)
    assert moved("paydesk_dead_letters_open", kind="payment_operation") == 1
    assert now(held, "paydesk_outbox_backlog") == 0
    assert (
        moved("paydesk_celery_tasks_total", task="apps.core.tasks.deliver_outbox_events", outcome="success")
        > 0
    )

    # when the reviewer approves the held payment
    [review_payment] = [
        p for p in auth_client.get("/api/v1/payments").json()["data"] if p["status"] == "in_review"
    ]
    response = reviewer_client.put(
        f"/api/v1/payments/{review_payment['id']}/review",
        {"decision": "approve", "note": "known customer"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    assert response.status_code == 200, response.content
    decided = scrape(client)
    moved = Moved(held, decided)

    # then the queue empties, the decision's latency is observed once, the capture is counted
    assert now(decided, "paydesk_review_queue_size") == 0
    assert moved("paydesk_review_decision_seconds_count", decision="approved") == 1
    assert moved("paydesk_payments", status="succeeded", gateway="simulated") == 1
    assert moved("paydesk_payments", status="in_review", gateway="simulated") == -1
    assert moved(calls, gateway="simulated", operation="capture", outcome="captured") == 1
    assert moved("paydesk_ledger_entries_total", kind="payment_capture") == 1

    # when the broker is down, the transfer's event waits in the outbox
    with tasks_published_to():
        _post(
            auth_client,
            "/api/v1/transfers",
            {"source_wallet": source["id"], "destination_wallet": other["id"], "amount": 100},
        )
        stuck = scrape(client)
    assert now(stuck, "paydesk_outbox_backlog") >= 1
    assert now(stuck, "paydesk_outbox_oldest_undelivered_age_seconds") > 0

    # and once the sweep hands it over again, the backlog is gone
    outbox.sweep_outbox(older_than=timedelta(0))
    assert now(scrape(client), "paydesk_outbox_backlog") == 0


def test_a_database_outage_is_reported_not_raised(client, no_metrics_cache):
    database = connections["default"]
    port = database.settings_dict["PORT"]
    database.close()
    database.settings_dict["PORT"] = 1  # nothing listens there: the database is "down"
    try:
        metrics_now = scrape(client)
    finally:
        database.close()
        database.settings_dict["PORT"] = port
    assert now(metrics_now, "paydesk_metrics_database_up") == 0
    assert now(metrics_now, "django_http_requests_total_by_method_total", method="GET") >= 1


def test_database_state_is_shared_for_the_cache_period(client, settings, auth_client):
    settings.METRICS_DB_CACHE_SECONDS = 60
    first = now(scrape(client), "paydesk_payments", status="succeeded", gateway="simulated")
    _post(auth_client, "/api/v1/payments", {"amount": 900, "currency": "USD", "payment_method": "tok_visa"})
    assert now(scrape(client), "paydesk_payments", status="succeeded", gateway="simulated") == first
    settings.METRICS_DB_CACHE_SECONDS = 0
    assert now(scrape(client), "paydesk_payments", status="succeeded", gateway="simulated") == first + 1
