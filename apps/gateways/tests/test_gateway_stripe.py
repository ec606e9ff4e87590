"""StripeGateway through the official SDK, over real HTTP against the fake Stripe server."""

import json
import socket

import pytest
import requests

from apps.gateways.base import GatewayError, GatewayResponseLost, GatewayRetryableError
from apps.gateways.stripe_gateway import METADATA_KEY, StripeGateway


@pytest.fixture
def gateway(fake_stripe):
    return StripeGateway()


def _posts_to(fake_stripe, path):
    return [r for r in fake_stripe.requests if r.method == "POST" and r.path == path]


def _authorize(gateway, *, key="pay_1", token="tok_visa", amount=5000, capture=True):
    return gateway.authorize(amount=amount, currency="EUR", token=token, idempotency_key=key, capture=capture)


@pytest.mark.parametrize(
    ("token", "brand", "last4"),
    [
        ("tok_visa", "visa", "4242"),
        ("tok_mastercard", "mastercard", "4444"),
        ("pm_card_visa", "visa", "4242"),
    ],
)
def test_automatic_capture_charges_the_card(gateway, fake_stripe, token, brand, last4):
    result = _authorize(gateway, token=token, amount=5000)

    assert result.status == "captured"
    assert result.succeeded
    assert result.reference.startswith("pi_")
    assert (result.amount, result.currency) == (5000, "EUR")
    assert (result.card_brand, result.card_last4, result.risk_level) == (brand, last4, "normal")
    intent = fake_stripe.payment_intent(result.reference)
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 5000)
    assert fake_stripe.charges_made == 1


def test_authorize_sends_our_key_lower_case_currency_and_the_token(gateway, fake_stripe):
    _authorize(gateway, key="pay_abc", token="tok_visa")

    [create] = _posts_to(fake_stripe, "/v1/payment_intents")
    assert create.idempotency_key == "pay_abc"
    assert create.params["currency"] == "eur"
    assert create.params["capture_method"] == "automatic"
    assert create.params["payment_method_data"] == {"type": "card", "card": {"token": "tok_visa"}}
    assert create.params["metadata"] == {METADATA_KEY: "pay_abc"}


def test_raw_answer_carries_neither_the_api_key_nor_the_client_secret(gateway, fake_stripe):
    result = _authorize(gateway)

    raw = json.dumps(result.raw)
    assert result.raw["id"] == result.reference
    assert fake_stripe.api_key not in raw
    assert "_secret_" not in raw


def test_manual_capture_authorizes_then_captures_part_of_it(gateway, fake_stripe):
    authorized = _authorize(gateway, key="pay_m", amount=5000, capture=False)
    assert (authorized.status, authorized.amount) == ("authorized", 5000)
    assert fake_stripe.payment_intent(authorized.reference)["status"] == "requires_capture"

    captured = gateway.capture(reference=authorized.reference, amount=3000, idempotency_key="pay_m:capture")

    assert (captured.status, captured.amount, captured.reference) == ("captured", 3000, authorized.reference)
    assert fake_stripe.payment_intent(authorized.reference)["amount_received"] == 3000
    [capture] = _posts_to(fake_stripe, f"/v1/payment_intents/{authorized.reference}/capture")
    assert capture.idempotency_key == "pay_m:capture"


def test_capturing_more_than_authorized_fails_and_leaves_the_authorization(gateway, fake_stripe):
    authorized = _authorize(gateway, amount=5000, capture=False)

    result = gateway.capture(reference=authorized.reference, amount=6000, idempotency_key="pay_1:capture")

    assert (result.status, result.failure_code) == ("failed", "amount_too_large")
    assert fake_stripe.payment_intent(authorized.reference)["status"] == "requires_capture"


def test_void_cancels_the_authorization(gateway, fake_stripe):
    authorized = _authorize(gateway, key="pay_v", capture=False)

    result = gateway.void(reference=authorized.reference, idempotency_key="pay_v:void")

    assert (result.status, result.reference) == ("voided", authorized.reference)
    assert fake_stripe.payment_intent(authorized.reference)["status"] == "canceled"
    [cancel] = _posts_to(fake_stripe, f"/v1/payment_intents/{authorized.reference}/cancel")
    assert cancel.idempotency_key == "pay_v:void"


def test_voiding_a_captured_payment_fails(gateway, fake_stripe):
    captured = _authorize(gateway, capture=True)

    result = gateway.void(reference=captured.reference, idempotency_key="pay_1:void")

    assert (result.status, result.failure_code) == ("failed", "payment_intent_unexpected_state")
    assert fake_stripe.payment_intent(captured.reference)["status"] == "succeeded"


def test_partial_refund_then_a_refund_over_what_is_left_fails(gateway, fake_stripe):
    captured = _authorize(gateway, amount=1000)

    partial = gateway.refund(reference=captured.reference, amount=400, idempotency_key="re_1")
    too_much = gateway.refund(reference=captured.reference, amount=700, idempotency_key="re_2")

    assert (partial.status, partial.amount, partial.currency) == ("refunded", 400, "EUR")
    assert partial.reference.startswith("re_")
    assert (too_much.status, too_much.failure_code) == ("failed", "amount_too_large")
    assert [r["amount"] for r in fake_stripe.refunds] == [400]
    assert _posts_to(fake_stripe, "/v1/refunds")[0].idempotency_key == "re_1"


@pytest.mark.parametrize(
    ("token", "failure_code"),
    [("tok_chargeDeclined", "card_declined"), ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds")],
)
def test_a_decline_is_a_failed_result_not_an_exception(gateway, token, failure_code):
    result = _authorize(gateway, token=token)

    assert result.status == "failed"
    assert not result.succeeded
    assert result.failure_code == failure_code
    assert result.failure_message
    assert result.reference.startswith("pi_")


def test_elevated_risk_is_reported_on_the_authorization(gateway):
    result = _authorize(gateway, token="tok_riskLevelElevated", capture=False)

    assert (result.status, result.risk_level) == ("authorized", "elevated")


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "gateway_unavailable"), (503, "gateway_unavailable"), (429, "gateway_rate_limited")],
)
def test_server_errors_and_rate_limits_are_retryable(gateway, fake_stripe, status, code):
    fake_stripe.fail_next(1, status=status)

    with pytest.raises(GatewayRetryableError) as raised:
        _authorize(gateway)

    assert raised.value.code == code
    assert fake_stripe.charges_made == 0


def test_retry_after_a_5xx_with_the_same_key_charges_once(gateway, fake_stripe):
    fake_stripe.fail_next(1, status=500)
    with pytest.raises(GatewayRetryableError):
        _authorize(gateway, key="pay_retry")

    result = _authorize(gateway, key="pay_retry")

    assert result.status == "captured"
    assert fake_stripe.charges_made == 1
    attempts = _posts_to(fake_stripe, "/v1/payment_intents")
    assert [a.idempotency_key for a in attempts] == ["pay_retry", "pay_retry"]


def test_retry_after_the_charge_happened_but_the_answer_failed_charges_once(gateway, fake_stripe):
    fake_stripe.fail_after_charge_next(1)
    with pytest.raises(GatewayRetryableError):
        _authorize(gateway, key="pay_once")
    assert fake_stripe.charges_made == 1

    result = _authorize(gateway, key="pay_once")

    assert result.status == "captured"
    assert fake_stripe.charges_made == 1
    assert fake_stripe.payment_intent(result.reference)["amount_received"] == 5000


def test_retried_refund_after_a_lost_answer_refunds_once(gateway, fake_stripe):
    captured = _authorize(gateway, amount=1000)
    fake_stripe.fail_after_charge_next(1)
    with pytest.raises(GatewayRetryableError):
        gateway.refund(reference=captured.reference, amount=300, idempotency_key="re_once")

    result = gateway.refund(reference=captured.reference, amount=300, idempotency_key="re_once")

    assert result.status == "refunded"
    assert [r["amount"] for r in fake_stripe.refunds] == [300]


def test_timeout_waiting_for_the_answer_is_response_lost_and_retrieve_finds_the_charge(fake_stripe, settings):
    settings.STRIPE_TIMEOUT_SECONDS = 1
    gateway = StripeGateway()
    fake_stripe.hang_next(1, seconds=3)

    with pytest.raises(GatewayResponseLost):
        _authorize(gateway, key="pay_lost", amount=2500)
    found = gateway.retrieve(idempotency_key="pay_lost")

    assert found is not None
    assert (found.status, found.amount, found.currency) == ("captured", 2500, "EUR")
    assert (found.card_brand, found.card_last4) == ("visa", "4242")
    assert fake_stripe.charges_made == 1


def test_retrieve_reports_an_authorization_and_a_decline(gateway):
    authorized = _authorize(gateway, key="pay_auth", capture=False)
    _authorize(gateway, key="pay_declined", token="tok_chargeDeclinedInsufficientFunds")

    found_authorized = gateway.retrieve(idempotency_key="pay_auth")
    found_declined = gateway.retrieve(idempotency_key="pay_declined")

    assert (found_authorized.status, found_authorized.reference) == ("authorized", authorized.reference)
    assert (found_declined.status, found_declined.failure_code) == ("failed", "insufficient_funds")


def test_retrieve_of_an_unknown_key_is_none(gateway):
    _authorize(gateway, key="pay_known")

    assert gateway.retrieve(idempotency_key="pay_unknown") is None


def test_retrieve_escapes_quotes_in_the_key(gateway):
    _authorize(gateway, key="pay_'quoted'")

    found = gateway.retrieve(idempotency_key="pay_'quoted'")

    assert found is not None
    assert found.status == "captured"


def test_invalid_api_key_is_a_clear_non_retryable_error(fake_stripe):
    gateway = StripeGateway(api_key="sk_test_wrong_key_1234")

    with pytest.raises(GatewayError) as raised:
        _authorize(gateway)

    assert not isinstance(raised.value, GatewayRetryableError | GatewayResponseLost)
    assert raised.value.code == "gateway_authentication_failed"
    assert "STRIPE_API_KEY" in str(raised.value)
    assert "sk_test_wrong_key_1234" not in str(raised.value)
    assert fake_stripe.charges_made == 0


def test_missing_api_key_fails_without_calling_stripe(fake_stripe, settings):
    settings.STRIPE_API_KEY = ""
    gateway = StripeGateway()

    with pytest.raises(GatewayError) as raised:
        _authorize(gateway)

    assert raised.value.code == "gateway_not_configured"
    assert fake_stripe.requests == []


def test_unreachable_stripe_is_retryable_not_lost():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gateway = StripeGateway(api_key="sk_test_x", api_base=f"http://127.0.0.1:{closed_port}")

    with pytest.raises(GatewayRetryableError) as raised:
        _authorize(gateway)

    assert raised.value.code == "gateway_unreachable"


def test_reusing_a_key_for_another_request_is_an_idempotency_conflict(gateway, fake_stripe):
    _authorize(gateway, key="pay_same", amount=1000)

    with pytest.raises(GatewayError) as raised:
        _authorize(gateway, key="pay_same", amount=2000)

    assert raised.value.code == "gateway_idempotency_conflict"
    assert fake_stripe.charges_made == 1


def test_fake_replays_a_stored_answer_like_stripe(fake_stripe):
    # The tests above rely on this fidelity: same key and body → the first answer, flagged.
    def post(body):
        return requests.post(
            f"{fake_stripe.url}/v1/payment_intents",
            data=body,
            headers={"Authorization": f"Bearer {fake_stripe.api_key}", "Idempotency-Key": "k"},
            timeout=5,
        )

    body = {"amount": "100", "currency": "usd", "confirm": "true", "payment_method": "pm_card_visa"}
    first, again, changed = post(body), post(body), post({**body, "amount": "200"})

    assert first.status_code == 200
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (changed.status_code, changed.json()["error"]["type"]) == (400, "idempotency_error")
    assert fake_stripe.charges_made == 1


def test_fake_requires_bearer_auth(fake_stripe):
    answer = requests.get(f"{fake_stripe.url}/v1/payment_intents/pi_x", timeout=5)

    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
