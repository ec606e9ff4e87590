"""`gateway_call` and its exchange: the metric observed, never raising; one attempt and the raw exchange
recorded per call, by the settling transaction (`record`) or on their own (`record_alone`)."""

import pytest
from django.db import DatabaseError
from prometheus_client import REGISTRY

from apps.core.models import OutboxEvent
from apps.gateways.base import GatewayError, GatewayResponseLost, GatewayResult, GatewayRetryableError
from apps.gateways.calls import ChargeSubject, attempt_record, gateway_call
from apps.gateways.models import GatewayAttempt
from apps.gateways.selectors import gateway_attempts_for

SUBJECT = ChargeSubject(pk="txn_01TEST", gateway="simulated", currency="USD", amount=1_500)


def _charge(token, key=SUBJECT.pk):
    return lambda gateway: gateway.authorize(
        amount=SUBJECT.amount, currency="USD", token=token, idempotency_key=key, capture=True
    )


def _observed(operation, outcome):
    labels = {"gateway": "simulated", "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("paydesk_gateway_request_duration_seconds_count", labels) or 0


@pytest.mark.django_db
def test_a_charge_records_one_attempt_with_its_outcome_and_a_raw_log_event():
    exchange = gateway_call(
        subject=SUBJECT, operation="authorize", idempotency_key=SUBJECT.pk, call=_charge("tok_visa")
    )

    assert isinstance(exchange.outcome, GatewayResult)
    assert exchange.outcome.status == "captured"
    # the call itself writes nothing: its settlement records it, in the same transaction
    assert not GatewayAttempt.objects.exists()
    assert not OutboxEvent.objects.filter(event_type="payment.gateway_exchange").exists()
    recorded = exchange.record()
    attempt = GatewayAttempt.objects.get()
    assert (attempt.subject_id, attempt.operation, attempt.idempotency_key, attempt.outcome) == (
        SUBJECT.pk,
        "authorize",
        SUBJECT.pk,
        "captured",
    )
    assert recorded == attempt
    assert attempt.latency_ms == exchange.latency_ms >= 0
    event = OutboxEvent.objects.get(event_type="payment.gateway_exchange")
    assert (event.payload["payment"], event.payload["attempt"], event.payload["outcome"]) == (
        SUBJECT.pk,
        attempt.pk,
        "captured",
    )
    assert event.payload["request"]["amount"] == 1_500
    assert "tok_visa" not in str(event.payload)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "outcome", "flag"),
    [
        (GatewayRetryableError("busy", code="gateway_timeout"), "retryable_error", "retryable"),
        (GatewayResponseLost("gone", code="gateway_response_lost"), "lost", "lost"),
        (GatewayError("refused", code="gateway_idempotency_conflict"), "error", None),
    ],
)
def test_a_gateway_error_is_the_outcome_not_raised_and_is_recorded(error, outcome, flag):
    def call(gateway):
        raise error

    exchange = gateway_call(subject=SUBJECT, operation="authorize", idempotency_key="k", call=call)

    assert exchange.outcome is error
    assert (exchange.lost, exchange.retryable) == (flag == "lost", flag == "retryable")
    exchange.record()
    attempt = GatewayAttempt.objects.get()
    assert (attempt.outcome, attempt.error_code) == (outcome, error.code)


@pytest.mark.django_db
def test_a_retrieve_that_finds_nothing_is_recorded_as_not_found():
    exchange = gateway_call(
        subject=SUBJECT,
        operation="retrieve",
        idempotency_key=SUBJECT.pk,
        call=lambda gateway: gateway.retrieve(idempotency_key=SUBJECT.pk),
    )

    assert exchange.outcome is None
    exchange.record()
    assert GatewayAttempt.objects.get().error_code == "not_found"


@pytest.mark.django_db
def test_every_call_observes_the_gateway_latency_metric():
    before = _observed("authorize", "failed"), _observed("authorize", "retryable_error")

    gateway_call(
        subject=SUBJECT, operation="authorize", idempotency_key="k1", call=_charge("tok_chargeDeclined", "k1")
    )
    gateway_call(
        subject=SUBJECT, operation="authorize", idempotency_key="k2", call=_charge("tok_transientError", "k2")
    )

    assert _observed("authorize", "failed") == before[0] + 1
    assert _observed("authorize", "retryable_error") == before[1] + 1


@pytest.mark.django_db
def test_calls_go_through_the_circuit_breaker(settings):
    settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = 1

    first = gateway_call(
        subject=SUBJECT, operation="authorize", idempotency_key="a", call=_charge("tok_responseLost", "a")
    )
    second = gateway_call(
        subject=SUBJECT, operation="authorize", idempotency_key="b", call=_charge("tok_visa", "b")
    )

    first.record()
    second.record()
    assert first.lost
    assert isinstance(second.outcome, GatewayRetryableError)
    assert second.outcome.code == "gateway_circuit_open"
    assert list(GatewayAttempt.objects.order_by("id").values_list("error_code", flat=True)) == [
        "response_lost",
        "gateway_circuit_open",
    ]


@pytest.mark.django_db
def test_an_attempt_the_database_refuses_still_returns_the_answer(monkeypatch):
    def refuse(**kwargs):
        raise DatabaseError("the database went away")

    monkeypatch.setattr(GatewayAttempt.objects, "create", refuse)

    exchange = gateway_call(
        subject=SUBJECT, operation="authorize", idempotency_key=SUBJECT.pk, call=_charge("tok_visa")
    )

    assert exchange.outcome.status == "captured"
    assert exchange.record_alone() is None


@pytest.mark.django_db(transaction=True)
def test_record_alone_commits_the_attempt_in_a_transaction_of_its_own():
    exchange = gateway_call(
        subject=SUBJECT,
        operation="void",
        idempotency_key="v",
        call=lambda gateway: GatewayResult(status="voided"),
    )

    attempt = exchange.record_alone()

    assert attempt is not None
    assert GatewayAttempt.objects.get().pk == attempt.pk
    assert OutboxEvent.objects.filter(event_type="payment.gateway_exchange").count() == 1


@pytest.mark.django_db
def test_attempt_record_writes_inside_the_callers_transaction():
    attempt = attempt_record(
        subject=SUBJECT,
        operation="retrieve",
        idempotency_key=SUBJECT.pk,
        outcome=GatewayResult(status="captured", reference="sim_ch_1"),
        latency_ms=0,
    )

    assert GatewayAttempt.objects.get() == attempt
    assert OutboxEvent.objects.filter(
        event_type="payment.gateway_exchange", aggregate_id=str(attempt.pk)
    ).exists()


@pytest.mark.django_db
def test_gateway_attempts_for_reads_one_subjects_attempts_oldest_first():
    other = ChargeSubject(pk="txn_01OTHER", gateway="simulated", currency="USD", amount=100)
    for subject, key in ((SUBJECT, "k1"), (other, "k2"), (SUBJECT, "k3")):
        gateway_call(
            subject=subject, operation="authorize", idempotency_key=key, call=_charge("tok_visa", key)
        ).record()

    attempts = gateway_attempts_for(subject_id=SUBJECT.pk)

    assert [a.idempotency_key for a in attempts] == ["k1", "k3"]
