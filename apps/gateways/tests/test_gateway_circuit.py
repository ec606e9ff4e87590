"""The circuit breaker around the real StripeGateway, its state in Redis, Stripe played by the fake."""

import threading
import time

import pytest

from apps.gateways.base import GatewayResponseLost, GatewayRetryableError
from apps.gateways.circuit import CircuitBreaker, CircuitBreakerGateway
from apps.gateways.stripe_gateway import StripeGateway

THRESHOLD = 3
COOLDOWN = 1


@pytest.fixture
def circuit_settings(settings):
    settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = THRESHOLD
    settings.GATEWAY_CIRCUIT_COOLDOWN_SECONDS = COOLDOWN
    return settings


@pytest.fixture
def gateway(fake_stripe, circuit_settings):
    return CircuitBreakerGateway(StripeGateway())


def _charge(gateway, key="pay_1", token="tok_visa"):
    return gateway.authorize(amount=1000, currency="USD", token=token, idempotency_key=key, capture=True)


def _error_code(gateway, key="pay_1"):
    with pytest.raises(GatewayRetryableError) as raised:
        _charge(gateway, key=key)
    return raised.value.code


def _open(gateway, fake_stripe):
    fake_stripe.fail_next(THRESHOLD, status=503)
    for attempt in range(THRESHOLD):
        assert _error_code(gateway, key=f"pay_open_{attempt}") == "gateway_unavailable"


def test_opens_after_consecutive_failures_and_stops_calling_the_gateway(gateway, fake_stripe):
    fake_stripe.fail_next(100, status=503)

    codes = [_error_code(gateway, key=f"pay_{i}") for i in range(10)]

    assert codes == ["gateway_unavailable"] * THRESHOLD + ["gateway_circuit_open"] * (10 - THRESHOLD)
    assert len(fake_stripe.requests) == THRESHOLD
    assert gateway.breaker.state() == "open"


def test_every_operation_fails_fast_while_open(gateway, fake_stripe):
    _open(gateway, fake_stripe)
    calls = [
        lambda: gateway.capture(reference="pi_x", amount=1, idempotency_key="k1"),
        lambda: gateway.void(reference="pi_x", idempotency_key="k2"),
        lambda: gateway.refund(reference="pi_x", amount=1, idempotency_key="k3"),
        lambda: gateway.retrieve(idempotency_key="k4"),
    ]

    for call in calls:
        with pytest.raises(GatewayRetryableError) as raised:
            call()
        assert raised.value.code == "gateway_circuit_open"
    assert len(fake_stripe.requests) == THRESHOLD


def test_after_the_cooldown_a_successful_trial_closes_it(gateway, fake_stripe):
    _open(gateway, fake_stripe)
    assert _error_code(gateway) == "gateway_circuit_open"

    time.sleep(COOLDOWN + 0.2)
    assert gateway.breaker.state() == "half_open"
    trial = _charge(gateway, key="pay_trial")
    after = [_charge(gateway, key=f"pay_after_{i}") for i in range(THRESHOLD + 1)]

    assert trial.status == "captured"
    assert all(result.status == "captured" for result in after)
    assert gateway.breaker.state() == "closed"
    assert fake_stripe.charges_made == 1 + THRESHOLD + 1


def test_a_failed_trial_opens_it_again_for_a_full_cooldown(gateway, fake_stripe):
    _open(gateway, fake_stripe)
    time.sleep(COOLDOWN + 0.2)
    fake_stripe.fail_next(1, status=500)

    assert _error_code(gateway, key="pay_trial") == "gateway_unavailable"
    assert _error_code(gateway, key="pay_next") == "gateway_circuit_open"
    assert len(fake_stripe.requests) == THRESHOLD + 1

    time.sleep(COOLDOWN + 0.2)
    assert _charge(gateway, key="pay_later").status == "captured"


def test_declines_never_open_it(gateway, fake_stripe):
    results = [_charge(gateway, key=f"pay_{i}", token="tok_chargeDeclined") for i in range(THRESHOLD * 3)]

    assert {result.failure_code for result in results} == {"card_declined"}
    assert len(fake_stripe.requests) == THRESHOLD * 3
    assert gateway.breaker.state() == "closed"


def test_a_success_resets_the_count_of_consecutive_failures(gateway, fake_stripe):
    for round_ in range(3):
        fake_stripe.fail_next(THRESHOLD - 1, status=500)
        for attempt in range(THRESHOLD - 1):
            assert _error_code(gateway, key=f"pay_{round_}_{attempt}") == "gateway_unavailable"
        assert _charge(gateway, key=f"pay_ok_{round_}").status == "captured"

    assert gateway.breaker.state() == "closed"


def test_lost_answers_count_as_failures(fake_stripe, circuit_settings):
    circuit_settings.STRIPE_TIMEOUT_SECONDS = 0.3
    circuit_settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = 2
    gateway = CircuitBreakerGateway(StripeGateway())
    fake_stripe.hang_next(2, seconds=1)

    for attempt in range(2):
        with pytest.raises(GatewayResponseLost):
            _charge(gateway, key=f"pay_lost_{attempt}")

    assert _error_code(gateway, key="pay_next") == "gateway_circuit_open"


def test_the_state_is_shared_by_every_instance(fake_stripe, circuit_settings):
    # Two wrappers stand for two processes: they only share the cache.
    web, worker = CircuitBreakerGateway(StripeGateway()), CircuitBreakerGateway(StripeGateway())

    _open(web, fake_stripe)

    assert _error_code(worker, key="pay_worker") == "gateway_circuit_open"
    assert len(fake_stripe.requests) == THRESHOLD


def test_concurrent_failures_are_all_counted(fake_stripe, circuit_settings):
    threads_count = 8
    circuit_settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = threads_count
    gateway = CircuitBreakerGateway(StripeGateway())
    fake_stripe.fail_next(threads_count, status=503)
    start = threading.Barrier(threads_count)
    codes = []

    def fail_once(index):
        start.wait()
        try:
            _charge(gateway, key=f"pay_{index}")
        except GatewayRetryableError as exc:
            codes.append(exc.code)

    threads = [threading.Thread(target=fail_once, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # A lost update in the counter would leave it one short of the threshold: still closed.
    assert codes == ["gateway_unavailable"] * threads_count
    assert _error_code(gateway, key="pay_next") == "gateway_circuit_open"


def test_half_open_lets_exactly_one_of_many_concurrent_callers_through(gateway, fake_stripe):
    _open(gateway, fake_stripe)
    time.sleep(COOLDOWN + 0.2)
    fake_stripe.hang_next(1, seconds=0.5)  # the trial is still running while the others arrive
    callers = 8
    start = threading.Barrier(callers)
    outcomes = []

    def call(index):
        start.wait()
        try:
            outcomes.append(_charge(gateway, key=f"pay_{index}").status)
        except GatewayRetryableError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["captured"] + ["gateway_circuit_open"] * (callers - 1)
    assert fake_stripe.charges_made == 1
    assert gateway.breaker.state() == "closed"


def test_a_cache_outage_never_blocks_payments(fake_stripe, circuit_settings):
    circuit_settings.CACHES = {
        **circuit_settings.CACHES,
        "unreachable": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        },
    }
    breaker = CircuitBreaker("stripe", cache_alias="unreachable")
    gateway = CircuitBreakerGateway(StripeGateway(), breaker=breaker)
    fake_stripe.fail_next(THRESHOLD * 2, status=503)

    codes = [_error_code(gateway, key=f"pay_{i}") for i in range(THRESHOLD * 2)]
    result = _charge(gateway, key="pay_ok")

    # Without its memory the breaker stays closed: every call reaches Stripe.
    assert codes == ["gateway_unavailable"] * THRESHOLD * 2
    assert result.status == "captured"
    assert breaker.state() == "closed"
