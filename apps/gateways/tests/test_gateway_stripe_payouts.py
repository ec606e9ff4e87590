"""StripeGateway's payouts through the official SDK, over real HTTP against the fake Stripe server:
the request Stripe gets, its idempotency (a retry is the same payout), finding a payout again by our
key when its answer was lost, and what Stripe's payout statuses mean to Paydesk."""

import pytest

from apps.core.ids import new_id
from apps.gateways.base import GatewayResponseLost, GatewayRetryableError, UnknownPaymentMethod
from apps.gateways.stripe_gateway import METADATA_KEY, StripeGateway


@pytest.fixture
def gateway(fake_stripe, settings):
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    return StripeGateway()


def _send(gateway, *, key=None, destination="btok_us_verified", amount=2_500):
    key = key or new_id("po")
    return key, gateway.create_payout(
        amount=amount, currency="USD", destination=destination, idempotency_key=key
    )


def test_a_payout_is_sent_once_with_our_key_and_is_in_transit_until_stripe_settles_it(gateway, fake_stripe):
    key, result = _send(gateway)

    [create] = [r for r in fake_stripe.requests if r.method == "POST" and r.path == "/v1/payouts"]
    assert create.idempotency_key == key
    assert create.params == {
        "amount": "2500",
        "currency": "usd",
        "destination": "btok_us_verified",
        "metadata": {METADATA_KEY: key},
    }
    assert (result.status, result.amount, result.currency) == ("in_transit", 2_500, "USD")
    assert result.reference.startswith("po_")
    assert fake_stripe.payout(result.reference)["status"] == "pending"


def test_a_retry_with_the_same_key_is_the_same_payout(gateway, fake_stripe):
    key, first = _send(gateway)
    _, again = _send(gateway, key=key)

    assert again.reference == first.reference
    assert len(fake_stripe.payouts) == 1


def test_paid_and_failed_payouts_map_with_stripes_failure_code(gateway, fake_stripe):
    key_ok, ok = _send(gateway, destination="btok_us_verified")
    key_closed, closed = _send(
        gateway, destination=fake_stripe.create_bank_account("us_verified_accountClosed")
    )
    fake_stripe.settle_payouts()

    paid = gateway.retrieve_payout(idempotency_key=key_ok)
    failed = gateway.retrieve_payout(idempotency_key=key_closed)

    assert (paid.status, paid.reference) == ("paid", ok.reference)
    assert (failed.status, failed.reference, failed.failure_code) == (
        "failed",
        closed.reference,
        "account_closed",
    )
    assert failed.failure_message == "The bank account has been closed."


def test_a_lost_answer_is_unknown_and_the_payout_is_found_again_by_its_key_never_sent_twice(
    gateway, fake_stripe
):
    fake_stripe.hang_next(1, seconds=2)
    key = new_id("po")

    with pytest.raises(GatewayResponseLost):
        _send(gateway, key=key)

    [made] = fake_stripe.payouts
    found = gateway.retrieve_payout(idempotency_key=key)
    assert (found.status, found.reference) == ("in_transit", made["id"])
    # the retry the worker makes with the same key replays Stripe's payout
    _, again = _send(gateway, key=key)
    assert again.reference == made["id"]
    assert len(fake_stripe.payouts) == 1


def test_retrieve_pages_through_stripes_list_and_answers_none_for_a_key_it_never_saw(
    gateway, fake_stripe, monkeypatch
):
    monkeypatch.setattr("apps.gateways.stripe_payouts.PAGE_SIZE", 2)
    keys = [_send(gateway)[0] for _ in range(5)]

    assert gateway.retrieve_payout(idempotency_key=keys[0]).status == "in_transit"
    assert gateway.retrieve_payout(idempotency_key=new_id("po")) is None


def test_a_5xx_is_retryable_and_sends_nothing(gateway, fake_stripe):
    fake_stripe.fail_next(1, status=503)

    with pytest.raises(GatewayRetryableError):
        _send(gateway)

    assert fake_stripe.payouts == []


def test_an_unknown_destination_is_a_failed_payout_and_nothing_is_created(gateway, fake_stripe):
    _, result = _send(gateway, destination="ba_unknown")

    assert (result.status, result.failure_code) == ("failed", "resource_missing")
    assert fake_stripe.payouts == []


def test_destination_check_reads_a_bank_tokens_last4_and_refuses_what_is_no_bank_account(gateway):
    shown = gateway.payout_destination_check(destination="btok_us_verified_accountClosed")
    assert (shown.type, shown.last4) == ("bank_account", "1113")
    for destination in ("btok_nope", "tok_visa", "4242424242424242"):
        with pytest.raises(UnknownPaymentMethod):
            gateway.payout_destination_check(destination=destination)


@pytest.mark.parametrize(
    ("stripe_status", "status", "code"),
    [
        ("pending", "in_transit", ""),
        ("in_transit", "in_transit", ""),
        ("paid", "paid", ""),
        ("failed", "failed", "no_account"),
        ("canceled", "failed", "payout_canceled"),
    ],
)
def test_each_stripe_payout_status_means_one_thing_to_paydesk(stripe_status, status, code):
    from apps.gateways.stripe_payouts import payout_result

    stripe_payout = {
        "id": "po_1",
        "object": "payout",
        "amount": 700,
        "currency": "eur",
        "status": stripe_status,
    }
    if stripe_status == "failed":
        stripe_payout["failure_code"] = "no_account"

    result = payout_result(stripe_payout)

    assert (result.status, result.failure_code, result.amount, result.currency) == (status, code, 700, "EUR")
