"""Which gateway runs (the setting, the circuit breaker around it), and the simulated gateway under
concurrent calls with one key."""

import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from apps.gateways import GATEWAYS, get_gateway
from apps.gateways.base import GatewayError
from apps.gateways.circuit import CircuitBreakerGateway
from apps.gateways.models import SimulatedCharge
from apps.gateways.simulated import SimulatedGateway
from apps.gateways.tests.factories import authorize, charge_state

pytestmark = pytest.mark.django_db


# --- selection ------------------------------------------------------------------------------------


def test_get_gateway_defaults_to_the_simulated_gateway_behind_the_circuit_breaker(settings):
    del settings.PAYMENT_GATEWAY

    gateway = get_gateway()
    assert isinstance(gateway, CircuitBreakerGateway)
    assert isinstance(gateway.inner, SimulatedGateway)


def test_get_gateway_follows_the_setting_and_refuses_unknown_names(settings):
    settings.PAYMENT_GATEWAY = "simulated"
    assert get_gateway().name == "simulated"

    with pytest.raises(ImproperlyConfigured, match="nonsense"):
        get_gateway("nonsense")


def test_every_registered_gateway_implements_the_interface():
    for name in GATEWAYS:
        gateway = get_gateway(name)

        assert gateway.name == name
        assert all(
            callable(getattr(gateway, call))
            for call in ("authorize", "capture", "void", "refund", "retrieve")
        )


# --- concurrency ----------------------------------------------------------------------------------


def _race(count: int, call) -> list:
    start = threading.Barrier(count)
    outcomes: list = []

    def run(index: int) -> None:
        try:
            start.wait(timeout=10)
            outcomes.append(call(index))
        except GatewayError as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_concurrent_authorize_with_one_key_charges_once():
    outcomes = _race(10, lambda _: authorize(SimulatedGateway(), "tok_visa", key="pay_race"))

    assert len(outcomes) == 10
    assert {result.reference for result in outcomes} == {SimulatedCharge.objects.get().reference}
    assert SimulatedCharge.objects.get().amount_captured == 1000


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_never_exceed_the_captured_amount():
    reference = authorize(SimulatedGateway(), "tok_visa").reference

    outcomes = _race(
        10, lambda i: SimulatedGateway().refund(reference=reference, amount=300, idempotency_key=f"re_{i}")
    )

    refused = [outcome for outcome in outcomes if isinstance(outcome, GatewayError)]
    assert len(outcomes) == 10
    assert len(refused) == 7
    assert {error.code for error in refused} == {"amount_too_large"}
    assert charge_state(reference) == ("captured", 1000, 900)
