"""`payment_method_check`: each gateway says whether it knows a token before anything is written;
only a definite "no such token" (Stripe's `resource_missing`) refuses, and the look-up never moves
the circuit breaker."""

import pytest

from apps.gateways.base import GatewayError, GatewayRetryableError, UnknownPaymentMethod
from apps.gateways.circuit import CircuitBreakerGateway
from apps.gateways.models import SimulatedCharge
from apps.gateways.simulated import TEST_CARDS, SimulatedGateway
from apps.gateways.stripe_gateway import StripeGateway


@pytest.mark.django_db
@pytest.mark.parametrize("token", sorted(TEST_CARDS))
def test_the_simulated_gateway_knows_its_test_tokens(token):
    SimulatedGateway().payment_method_check(token=token)


@pytest.mark.django_db
def test_the_simulated_gateway_refuses_any_other_token_and_records_nothing():
    with pytest.raises(UnknownPaymentMethod) as refused:
        SimulatedGateway().payment_method_check(token="tok_nonsense")

    assert refused.value.code == "resource_missing"
    assert not SimulatedCharge.objects.exists()


def test_stripe_answers_resource_missing_for_a_token_it_does_not_know(fake_stripe):
    with pytest.raises(UnknownPaymentMethod) as refused:
        StripeGateway().payment_method_check(token="tok_nonsense")

    assert refused.value.code == "resource_missing"
    assert [(r.method, r.path) for r in fake_stripe.requests] == [("GET", "/v1/tokens/tok_nonsense")]
    assert fake_stripe.charges_made == 0


def test_stripe_knows_the_tokens_and_payment_methods_it_minted(fake_stripe):
    gateway = StripeGateway()
    token, payment_method = fake_stripe.create_token("visa"), fake_stripe.create_payment_method("mastercard")

    gateway.payment_method_check(token=token)
    gateway.payment_method_check(token=payment_method)

    assert [r.path for r in fake_stripe.requests] == [
        f"/v1/tokens/{token}",
        f"/v1/payment_methods/{payment_method}",
    ]


def test_stripes_test_tokens_are_not_asked_about_with_a_test_key(fake_stripe):
    gateway = StripeGateway()
    for token in ("tok_visa", "pm_card_visa", "tok_chargeDeclined"):
        gateway.payment_method_check(token=token)

    assert fake_stripe.requests == []


def test_with_a_live_key_even_a_test_token_name_is_asked_about(fake_stripe):
    gateway = StripeGateway(api_key="sk_live_unknown_to_the_fake")

    with pytest.raises(GatewayError) as raised:  # a refused key: not an answer about the token
        gateway.payment_method_check(token="tok_visa")

    assert not isinstance(raised.value, UnknownPaymentMethod)
    assert [r.path for r in fake_stripe.requests] == ["/v1/tokens/tok_visa"]


def test_an_outage_is_not_an_unknown_token(fake_stripe):
    fake_stripe.fail_next(1, status=503)

    with pytest.raises(GatewayRetryableError):
        StripeGateway().payment_method_check(token="tok_1abc")


def test_the_look_up_never_resets_the_circuits_count_of_failures(fake_stripe, settings):
    settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = 2
    settings.GATEWAY_CIRCUIT_COOLDOWN_SECONDS = 60
    gateway = CircuitBreakerGateway(StripeGateway())
    fake_stripe.fail_next(1, status=503)
    with pytest.raises(GatewayRetryableError):
        gateway.authorize(amount=100, currency="USD", token="tok_visa", idempotency_key="k1", capture=True)

    gateway.payment_method_check(token="tok_visa")  # answered without a call: no "success"
    fake_stripe.fail_next(1, status=503)
    with pytest.raises(GatewayRetryableError):
        gateway.authorize(amount=100, currency="USD", token="tok_visa", idempotency_key="k2", capture=True)

    assert gateway.breaker.state() == "open"
    requests_when_open = len(fake_stripe.requests)
    gateway.payment_method_check(token="tok_1abc")  # skipped while open: the charge fails fast
    assert len(fake_stripe.requests) == requests_when_open


# --- Authorize.Net's tokens and the card-data guard -----------------------------------------------


def test_an_authorize_net_profile_whose_ids_pass_the_luhn_check_is_a_token_only_as_a_payment_method():
    from apps.core.errors import InvalidRequest
    from apps.core.pci import reject_card_data

    profile = "anet_profile:10000000/20000004"  # 1000000020000004 passes the Luhn check

    reject_card_data({"payment_method": profile})
    for body in (
        {"payment_method": "10000000/20000004"},
        {"description": profile},
        {"metadata": {"p": profile}},
    ):
        with pytest.raises(InvalidRequest) as refused:
            reject_card_data(body)
        assert refused.value.code == "raw_card_data_rejected"


@pytest.mark.parametrize(
    ("token", "accepted"),
    [
        ("tok_visa", True),
        ("pm_card_visa", True),
        ("anet_nonce:eyJjb2RlIjoiNTBfMl8wNjAwMDUzNjg2NjAzNDQzNzRBNjE1NTdCMTk4MzBC+/=", True),
        ("anet_profile:1929176981/1929176982", True),
        ("anet_profile:1929176981", False),
        ("anet_profile:abc/123", False),
        ("anet_nonce:", False),
        ("anet_nonce:has spaces", False),
    ],
)
def test_the_token_shapes_paydesk_accepts(token, accepted):
    from apps.gateways.payment_methods import TOKEN_PATTERN

    assert bool(TOKEN_PATTERN.match(token)) is accepted
