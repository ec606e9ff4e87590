"""The gateway goes down: the circuit opens, payments wait in `processing` without hammering it, and
when it recovers a real worker's retries complete every one of them, each charged once.

The gateway is Stripe or Authorize.Net, each a fake server on a local port speaking its wire format
and answering 503 until the test calls `recover()`; the retries run on a real `celery -A config worker` on RabbitMQ. The
circuit's state lives in the shared cache, so the web side and the worker see one circuit.
"""

import pytest

from apps.gateways.models import GatewayAttempt
from apps.ledger.models import JournalEntry
from apps.payments.models import Payment

pytestmark = pytest.mark.e2e

# Longer than the three first requests take on a loaded machine (at 2 s, on CI's busy cores, the
# circuit half-opened before the third and let it through).
COOLDOWN_SECONDS = 10
THRESHOLD = 2


@pytest.fixture
def gateway_down(card_gateway, settings):
    """Stripe or Authorize.Net (each a local fake) answering 503 to everything until `recover()`."""
    extra = {
        "GATEWAY_CIRCUIT_FAILURE_THRESHOLD": str(THRESHOLD),
        "GATEWAY_CIRCUIT_COOLDOWN_SECONDS": str(COOLDOWN_SECONDS),
        "PAYMENT_RETRY_BASE_SECONDS": "0.5",
        "PAYMENT_RETRY_MAX_SECONDS": "2",
        "PAYMENT_RETRY_MAX_ATTEMPTS": "30",
    }
    for name, value in extra.items():
        setattr(settings, name, type(getattr(settings, name))(value))
    card_gateway.fake.fail_next(10_000, status=503)
    card_gateway.worker_env = {**card_gateway.env, **extra}
    return card_gateway


def test_payments_wait_in_processing_behind_an_open_circuit_and_complete_once_the_gateway_recovers(
    workers, gateway_down, auth_client, user, wait_for
):
    fake = gateway_down.fake
    # when: customers pay while the gateway answers 503 to everything
    bodies = [
        auth_client.post(
            "/api/v1/payments",
            {"amount": 1_000 * n, "currency": "EUR", "payment_method": gateway_down.token("visa")},
            format="json",
        )
        for n in (1, 2, 3)
    ]

    # then: each is accepted and waits in `processing`; the circuit opened after THRESHOLD failures,
    # so the third never reached the gateway
    assert [b.status_code for b in bodies] == [201] * 3
    assert [b.json()["status"] for b in bodies] == ["processing"] * 3
    ids = [b.json()["id"] for b in bodies]
    assert len(fake.requests) == THRESHOLD
    assert GatewayAttempt.objects.filter(subject_id=ids[2], error_code="gateway_circuit_open").exists()

    # when: a worker retries during the outage, the circuit lets one trial through per cool-down
    worker = workers.start(**gateway_down.worker_env)
    wait_for(
        lambda: GatewayAttempt.objects.filter(error_code="gateway_circuit_open").count() >= 6,
        timeout=30,
        what="retries to meet the open circuit",
        log=worker.log_path,
    )
    assert set(Payment.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"processing"}
    fast_failures = GatewayAttempt.objects.filter(error_code="gateway_circuit_open").count()
    assert len(fake.requests) < THRESHOLD + fast_failures  # most retries never reached the gateway

    # when: the gateway recovers
    fake.recover()

    # then: the retries complete every payment, each charged once and booked once
    wait_for(
        lambda: set(Payment.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"succeeded"},
        timeout=60,
        what="every payment to succeed after the recovery",
        log=worker.log_path,
    )
    assert fake.charges_made == 3
    assert all(gateway_down.charge_requests(payment_id) >= 1 for payment_id in ids)
    for payment_id in ids:
        assert JournalEntry.objects.filter(kind="payment_capture", memo=f"payment {payment_id}").count() == 1
    listed = {p["id"]: p for p in auth_client.get("/api/v1/payments").json()["data"]}
    assert [listed[i]["amount_captured"] for i in ids] == [1_000, 2_000, 3_000]
