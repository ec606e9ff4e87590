"""Retries with backoff, dead letters, lost answers and reconciliation."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.core.models import DeadLetter
from apps.gateways.base import GatewayRetryableError
from apps.gateways.calls import GatewayExchange
from apps.gateways.models import GatewayAttempt
from apps.payments import services, tasks
from apps.payments.models import Payment
from apps.payments.services import payment_mark_reconcile, retry_delay
from apps.payments.tests.factories import sum_of_postings

pytestmark = pytest.mark.django_db(transaction=True)


def create(client, token, **body):
    return client.post(
        "/api/v1/payments",
        {"amount": 1200, "currency": "USD", "payment_method": token, **body},
        format="json",
    )


def open_refund(payment_id, amount):
    """A refund written `pending`, its gateway call not made yet."""
    owner = Payment.objects.get(pk=payment_id).owner
    return services.refund_open(actor=None, owner=owner, payment_id=payment_id, amount=amount, reason="")


def test_transient_errors_are_retried_until_success(auth_client):
    # Eager tasks: the retries scheduled after each failure run at once.
    body = create(auth_client, "tok_transientError").json()
    assert body["status"] == "succeeded"
    attempts = list(GatewayAttempt.objects.filter(subject_id=body["id"]).values_list("outcome", flat=True))
    assert attempts == ["retryable_error", "retryable_error", "captured"]
    assert sum_of_postings("platform_revenue", "USD") == 1200


def test_last_failed_attempt_goes_to_a_dead_letter_and_fails_the_payment(auth_client, settings):
    settings.PAYMENT_RETRY_MAX_ATTEMPTS = 2
    body = create(auth_client, "tok_transientError").json()
    assert body["status"] == "failed"
    assert body["failure_code"] == "gateway_unavailable"
    letter = DeadLetter.objects.get(reference=body["id"])
    assert letter.kind == "payment_operation"
    assert letter.attempts == 2
    assert letter.payload["operation"] == "authorize"
    assert sum_of_postings("platform_revenue", "USD") == 0


def test_backoff_grows_exponentially_with_jitter(settings):
    settings.PAYMENT_RETRY_BASE_SECONDS = 2
    settings.PAYMENT_RETRY_MAX_SECONDS = 60
    previous_ceiling = 0
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (6, 60)]:
        delays = {retry_delay(attempt) for _ in range(50)}
        assert all(0 <= d <= ceiling for d in delays)  # full jitter, capped at PAYMENT_RETRY_MAX_SECONDS
        assert max(delays) > previous_ceiling  # grows: later retries reach past earlier ones' ceiling
        assert len(delays) > 1  # jittered
        previous_ceiling = ceiling


def test_lost_answer_waits_in_reconcile_then_is_settled_once(auth_client):
    body = create(auth_client, "tok_responseLost").json()
    assert body["status"] == "reconcile"
    assert sum_of_postings("platform_revenue", "USD") == 0

    call_command("reconcile_payments", "--dry-run")
    assert Payment.objects.get(pk=body["id"]).status == "reconcile"

    call_command("reconcile_payments")
    payment = Payment.objects.get(pk=body["id"])
    assert payment.status == "succeeded"
    assert payment.amount_captured == 1200
    assert sum_of_postings("platform_revenue", "USD") == 1200
    call_command("reconcile_payments")  # nothing left: nothing doubles
    assert sum_of_postings("platform_revenue", "USD") == 1200


@pytest.fixture
def success_cannot_be_written():
    """A real database failure between the gateway's answer and our commit: a trigger that refuses
    to store any payment as succeeded (the test removes it to let reconciliation through)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_refuse_success() RETURNS trigger AS $$
            BEGIN
              IF NEW.status = 'succeeded' THEN RAISE EXCEPTION 'disk full'; END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_refuse_success BEFORE UPDATE ON payments_payment
              FOR EACH ROW EXECUTE FUNCTION test_refuse_success();
            """
        )

    def heal():
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS test_refuse_success ON payments_payment")
            cursor.execute("DROP FUNCTION IF EXISTS test_refuse_success()")

    yield heal
    heal()


def test_gateway_charged_but_write_failed_goes_to_reconcile_then_settles(
    auth_client, success_cannot_be_written
):
    response = create(auth_client, "tok_visa")
    assert response.status_code == 201
    payment = Payment.objects.get(pk=response.json()["id"])
    assert payment.status == "reconcile"
    assert payment.failure_code == "settle_failed"
    assert sum_of_postings("platform_revenue", "USD") == 0

    success_cannot_be_written()
    call_command("reconcile_payments")
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert sum_of_postings("platform_revenue", "USD") == 1200


def test_stuck_processing_payment_is_moved_to_reconcile_first(auth_client, settings):
    settings.PAYMENT_STUCK_AFTER_SECONDS = 0
    body = create(auth_client, "tok_visa", capture_method="manual").json()
    # As if a process died between opening a capture and the gateway call.
    Payment.objects.filter(pk=body["id"]).update(status="processing", pending_operation="capture")
    call_command("reconcile_payments")
    payment = Payment.objects.get(pk=body["id"])
    assert payment.status == "requires_capture"  # the gateway says: authorized, not captured


def test_reconcile_of_a_payment_the_gateway_never_saw_fails_it(user):
    # A request that died after opening the payment and before calling the gateway.
    payment = services.card_payment_open(
        actor=user,
        token="tok_visa",
        fields={
            "owner": user,
            "amount": 900,
            "currency": "USD",
            "capture_method": "automatic",
            "customer_id": user.pk,
        },
    )
    payment_mark_reconcile(actor=None, payment_id=payment.pk, reason="test")
    call_command("reconcile_payments")
    payment.refresh_from_db()
    assert payment.status == "failed"
    assert payment.failure_code == "gateway_no_charge"


def test_reconcile_rejects_a_negative_window():
    with pytest.raises(CommandError):
        call_command("reconcile_payments", "--older-than", "-1")


def test_a_refund_whose_retry_was_lost_is_finished_by_reconciliation(auth_client, settings):
    settings.PAYMENT_STUCK_AFTER_SECONDS = 0
    payment = create(auth_client, "tok_visa").json()
    # A refund opened, then its process died before the gateway call: it waits `pending`.
    refund = open_refund(payment["id"], amount=500)
    call_command("reconcile_payments", "--dry-run")
    refund.refresh_from_db()
    assert refund.status == "pending"
    call_command("reconcile_payments")
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert Payment.objects.get(pk=payment["id"]).amount_refunded == 500
    assert sum_of_postings("platform_revenue", "USD") == 700


def test_a_refunds_last_failed_attempt_goes_to_a_dead_letter_and_fails_the_refund(auth_client, settings):
    settings.PAYMENT_RETRY_MAX_ATTEMPTS = 1
    payment = create(auth_client, "tok_visa").json()
    refund = open_refund(payment["id"], amount=500)

    services.refund_settle(
        actor=None,
        refund_id=refund.pk,
        exchange=GatewayExchange(
            subject=refund.payment,
            operation="refund",
            idempotency_key=refund.pk,
            outcome=GatewayRetryableError(code="gateway_timeout"),
            latency_ms=3,
        ),
    )

    refund.refresh_from_db()
    assert refund.status == "failed"
    assert refund.failure_code == "gateway_unavailable"
    letter = DeadLetter.objects.get(reference=refund.pk)
    assert letter.kind == "refund"
    assert letter.reason == "refund failed 1 times: gateway_timeout"
    assert letter.payload["payment"] == payment["id"]
    assert Payment.objects.get(pk=payment["id"]).amount_refunded == 0
    assert sum_of_postings("platform_revenue", "USD") == 1200


def test_beat_task_settles_a_stuck_refund_even_when_a_payments_reconciliation_raises(auth_client, settings):
    """The task and the command are one pass: a gateway that does not answer about one payment
    leaves it in `reconcile` and the pass goes on to the refunds whose retry was lost."""
    settings.PAYMENT_STUCK_AFTER_SECONDS = 0
    # A payment whose gateway can't be reached when reconciliation asks about it.
    settings.STRIPE_API_KEY = "sk_test_unreachable"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    unreachable = create(auth_client, "tok_responseLost").json()
    assert unreachable["status"] == "reconcile"
    Payment.objects.filter(pk=unreachable["id"]).update(gateway="stripe")
    paid = create(auth_client, "tok_visa").json()
    refund = open_refund(paid["id"], amount=500)

    settled = tasks.reconcile_payments.apply().get()

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert Payment.objects.get(pk=paid["id"]).amount_refunded == 500
    assert Payment.objects.get(pk=unreachable["id"]).status == "reconcile"  # asked again next pass
    assert settled == 1
    with pytest.raises(CommandError, match="1 payment"):  # it was the gateway error, not a grace period
        call_command("reconcile_payments")
