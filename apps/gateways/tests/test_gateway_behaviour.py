"""What every card gateway with a real provider behind it does, run on each: Stripe and Authorize.Net,
through their official SDKs over real HTTP against local fakes of their APIs (`card_gateway`).

The provider-specific details (the requests' shape, Stripe's idempotency keys, Authorize.Net's
references, holds and settlement) are in test_gateway_stripe.py and test_gateway_authorizenet.py.
"""

import socket

import pytest

from apps.gateways.base import GatewayError, GatewayResponseLost, GatewayRetryableError

pytestmark = pytest.mark.django_db

LAST4 = {
    ("stripe", "visa"): "4242",
    ("stripe", "mastercard"): "4444",
    ("authorizenet", "visa"): "1111",
    ("authorizenet", "mastercard"): "0015",
}


def _authorize(card_gateway, gateway=None, *, key="pay_1", card="visa", amount=5000, capture=True):
    gateway = gateway or card_gateway.gateway()
    return gateway.authorize(
        amount=amount, currency="EUR", token=card_gateway.token(card), idempotency_key=key, capture=capture
    )


@pytest.mark.parametrize("card", ["visa", "mastercard"])
def test_automatic_capture_charges_the_card(card_gateway, card):
    result = _authorize(card_gateway, card=card, amount=5000)

    assert result.status == "captured"
    assert result.succeeded
    assert result.reference
    assert (result.amount, result.currency) == (5000, "EUR")
    assert (result.card_brand, result.card_last4, result.risk_level) == (
        card,
        LAST4[(card_gateway.name, card)],
        "normal",
    )
    assert card_gateway.state(result.reference) == "captured"
    assert card_gateway.captured(result.reference) == 5000
    assert card_gateway.fake.charges_made == 1


def test_manual_capture_authorizes_then_captures_part_of_it(card_gateway):
    gateway = card_gateway.gateway()
    authorized = _authorize(card_gateway, gateway, key="pay_m", amount=5000, capture=False)
    assert (authorized.status, authorized.amount) == ("authorized", 5000)
    assert card_gateway.state(authorized.reference) == "authorized"

    captured = gateway.capture(reference=authorized.reference, amount=3000, idempotency_key="pay_m:capture")

    assert (captured.status, captured.amount, captured.reference) == ("captured", 3000, authorized.reference)
    assert card_gateway.captured(authorized.reference) == 3000


def test_capturing_more_than_authorized_fails_and_leaves_the_authorization(card_gateway):
    gateway = card_gateway.gateway()
    authorized = _authorize(card_gateway, gateway, amount=5000, capture=False)

    result = gateway.capture(reference=authorized.reference, amount=6000, idempotency_key="pay_1:capture")

    assert (result.status, result.failure_code) == ("failed", "amount_too_large")
    assert card_gateway.state(authorized.reference) == "authorized"


def test_a_repeated_capture_captures_once(card_gateway):
    gateway = card_gateway.gateway()
    authorized = _authorize(card_gateway, gateway, amount=5000, capture=False)

    first = gateway.capture(reference=authorized.reference, amount=4000, idempotency_key="pay_1:capture")
    again = gateway.capture(reference=authorized.reference, amount=4000, idempotency_key="pay_1:capture")

    assert (first.status, again.status) == ("captured", "captured")
    assert card_gateway.captured(authorized.reference) == 4000


def test_void_cancels_the_authorization(card_gateway):
    gateway = card_gateway.gateway()
    authorized = _authorize(card_gateway, gateway, key="pay_v", capture=False)

    result = gateway.void(reference=authorized.reference, idempotency_key="pay_v:void")
    again = gateway.void(reference=authorized.reference, idempotency_key="pay_v:void")

    assert (result.status, result.reference) == ("voided", authorized.reference)
    assert again.status == "voided"
    assert card_gateway.state(authorized.reference) == "voided"


def test_voiding_a_captured_payment_fails(card_gateway):
    gateway = card_gateway.gateway()
    captured = _authorize(card_gateway, gateway, capture=True)

    result = gateway.void(reference=captured.reference, idempotency_key="pay_1:void")

    assert (result.status, result.failure_code) == ("failed", "payment_intent_unexpected_state")
    assert card_gateway.state(captured.reference) == "captured"


def test_partial_refund_then_a_refund_over_what_is_left_fails(card_gateway):
    gateway = card_gateway.gateway()
    captured = _authorize(card_gateway, gateway, amount=1000)
    card_gateway.settle()

    partial = gateway.refund(reference=captured.reference, amount=400, idempotency_key="re_1")
    too_much = gateway.refund(reference=captured.reference, amount=700, idempotency_key="re_2")

    assert (partial.status, partial.amount, partial.currency) == ("refunded", 400, "EUR")
    assert partial.reference
    assert (too_much.status, too_much.failure_code) == ("failed", "amount_too_large")
    assert card_gateway.refunds() == [400]


def test_a_decline_is_a_failed_result_not_an_exception(card_gateway):
    for card, failure_code in card_gateway.declines:
        result = _authorize(card_gateway, key=f"pay_{card}", card=card)

        assert result.status == "failed", card
        assert not result.succeeded
        assert result.failure_code == failure_code
        assert result.failure_message


def test_a_held_or_risky_charge_is_only_authorized_with_an_elevated_risk(card_gateway):
    result = _authorize(card_gateway, card="held", capture=False)

    assert (result.status, result.risk_level) == ("authorized", "elevated")


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retryable(card_gateway, status):
    card_gateway.fake.fail_next(1, status=status)

    with pytest.raises(GatewayRetryableError) as raised:
        _authorize(card_gateway)

    assert raised.value.code == "gateway_unavailable"
    assert card_gateway.fake.charges_made == 0


def test_retry_after_a_5xx_with_the_same_key_charges_once(card_gateway):
    gateway = card_gateway.gateway()
    card_gateway.fake.fail_next(1, status=500)
    with pytest.raises(GatewayRetryableError):
        _authorize(card_gateway, gateway, key="pay_retry")

    result = _authorize(card_gateway, gateway, key="pay_retry")

    assert result.status == "captured"
    assert card_gateway.fake.charges_made == 1


def test_retry_after_the_charge_happened_but_the_answer_failed_charges_once(card_gateway):
    gateway = card_gateway.gateway()
    card_gateway.fake.fail_after_charge_next(1)
    with pytest.raises(GatewayRetryableError):
        _authorize(card_gateway, gateway, key="pay_once")
    assert card_gateway.fake.charges_made == 1

    result = _authorize(card_gateway, gateway, key="pay_once")

    assert result.status == "captured"
    assert card_gateway.fake.charges_made == 1
    assert card_gateway.captured(result.reference) == 5000


def test_retried_refund_after_a_lost_answer_refunds_once(card_gateway):
    gateway = card_gateway.gateway()
    captured = _authorize(card_gateway, gateway, amount=1000)
    card_gateway.settle()
    card_gateway.fake.fail_after_charge_next(1)
    with pytest.raises(GatewayRetryableError):
        gateway.refund(reference=captured.reference, amount=300, idempotency_key="re_once")

    result = gateway.refund(reference=captured.reference, amount=300, idempotency_key="re_once")

    assert result.status == "refunded"
    assert card_gateway.refunds() == [300]


def test_timeout_waiting_for_the_answer_is_response_lost_and_retrieve_finds_the_charge(card_gateway):
    gateway = card_gateway.gateway()
    card_gateway.fake.hang_next(1, seconds=3)

    with pytest.raises(GatewayResponseLost):
        _authorize(card_gateway, gateway, key="pay_lost", amount=2500)
    found = gateway.retrieve(idempotency_key="pay_lost")

    assert found is not None
    assert (found.status, found.amount, found.currency) == ("captured", 2500, "EUR")
    assert (found.card_brand, found.card_last4) == ("visa", LAST4[(card_gateway.name, "visa")])
    assert card_gateway.fake.charges_made == 1


def test_retrieve_reports_an_authorization_and_a_decline(card_gateway):
    gateway = card_gateway.gateway()
    authorized = _authorize(card_gateway, gateway, key="pay_auth", capture=False)
    _authorize(card_gateway, gateway, key="pay_declined", card="declined")

    found_authorized = gateway.retrieve(idempotency_key="pay_auth")
    found_declined = gateway.retrieve(idempotency_key="pay_declined")

    assert (found_authorized.status, found_authorized.reference) == ("authorized", authorized.reference)
    assert (found_declined.status, found_declined.failure_code) == ("failed", "card_declined")


def test_retrieve_of_an_unknown_key_is_none(card_gateway):
    _authorize(card_gateway, key="pay_known")

    assert card_gateway.gateway().retrieve(idempotency_key="pay_unknown") is None


def test_reusing_a_key_for_another_request_is_an_idempotency_conflict(card_gateway):
    gateway = card_gateway.gateway()
    _authorize(card_gateway, gateway, key="pay_same", amount=1000)

    with pytest.raises(GatewayError) as raised:
        _authorize(card_gateway, gateway, key="pay_same", amount=2000)

    assert raised.value.code == "gateway_idempotency_conflict"
    assert card_gateway.fake.charges_made == 1


def test_unreachable_provider_is_retryable_not_lost(card_gateway, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.STRIPE_API_BASE = settings.AUTHORIZENET_API_URL = f"http://127.0.0.1:{closed_port}"

    with pytest.raises(GatewayRetryableError) as raised:
        _authorize(card_gateway)

    assert raised.value.code == "gateway_unreachable"
