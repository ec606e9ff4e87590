"""StripeGateway through the official SDK, over real HTTP against the fake Stripe server: what is
Stripe's own (the requests' shape, its idempotency keys, its API key, rate limits). What every card
gateway does is tested on each in test_gateway_behaviour.py."""

import json

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


def test_rate_limits_are_retryable(gateway, fake_stripe):
    fake_stripe.fail_next(1, status=429)

    with pytest.raises(GatewayRetryableError) as raised:
        _authorize(gateway)

    assert raised.value.code == "gateway_rate_limited"
    assert fake_stripe.charges_made == 0


def test_a_test_payment_method_charges_the_card(gateway, fake_stripe):
    result = _authorize(gateway, token="pm_card_visa", amount=5000)

    assert (result.status, result.card_brand, result.card_last4) == ("captured", "visa", "4242")
    assert result.reference.startswith("pi_")
    assert fake_stripe.payment_intent(result.reference)["amount_received"] == 5000


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
