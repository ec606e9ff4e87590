import pytest
from django.db import transaction

from apps.gateways.base import (
    GatewayError,
    GatewayResponseLost,
    GatewayRetryableError,
    PayoutDestination,
    UnknownPaymentMethod,
)
from apps.gateways.models import SimulatedCharge
from apps.gateways.simulated import SimulatedGateway
from apps.gateways.tests.factories import authorize, charge_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway() -> SimulatedGateway:
    return SimulatedGateway()


# --- tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "brand", "last4"), [("tok_visa", "visa", "4242"), ("tok_mastercard", "mastercard", "4444")]
)
def test_good_cards_are_charged(gateway, token, brand, last4):
    result = authorize(gateway, token, amount=1999, currency="EUR")

    assert result.status == "captured"
    assert result.succeeded
    assert result.reference.startswith("sim_ch_")
    assert (result.amount, result.currency) == (1999, "EUR")
    assert (result.card_brand, result.card_last4, result.risk_level) == (brand, last4, "normal")
    assert (result.failure_code, result.failure_message) == ("", "")
    assert charge_state(result.reference) == ("captured", 1999, 0)


def test_good_card_with_manual_capture_is_only_authorized(gateway):
    result = authorize(gateway, "tok_visa", capture=False)

    assert result.status == "authorized"
    assert charge_state(result.reference) == ("authorized", 0, 0)


@pytest.mark.parametrize(
    ("token", "code", "last4"),
    [
        ("tok_chargeDeclined", "card_declined", "0002"),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds", "9995"),
    ],
)
def test_declining_cards_fail_with_their_code(gateway, token, code, last4):
    result = authorize(gateway, token)

    assert result.status == "failed"
    assert not result.succeeded
    assert result.failure_code == code
    assert result.failure_message
    assert result.card_last4 == last4
    assert charge_state(result.reference) == ("failed", 0, 0)


def test_unknown_token_reaching_authorize_fails_as_a_missing_payment_method(gateway):
    # `payment_method_check` refuses it first; a charge still asked for answers a failure.
    result = authorize(gateway, "tok_doesNotExist")

    assert result.status == "failed"
    assert result.failure_code == "resource_missing"
    assert (result.card_brand, result.card_last4) == ("", "")


def test_elevated_risk_is_authorized_but_never_captured_automatically(gateway):
    result = authorize(gateway, "tok_riskLevelElevated", capture=True)

    assert result.status == "authorized"
    assert result.risk_level == "elevated"
    assert charge_state(result.reference) == ("authorized", 0, 0)


def test_transient_error_twice_then_success_under_the_same_key(gateway):
    with pytest.raises(GatewayRetryableError):
        authorize(gateway, "tok_transientError")
    assert gateway.retrieve(idempotency_key="pay_1") is None  # nothing charged yet
    with pytest.raises(GatewayRetryableError):
        authorize(gateway, "tok_transientError")

    result = authorize(gateway, "tok_transientError")

    assert result.status == "captured"
    assert SimulatedCharge.objects.get().attempts == 3
    assert charge_state(result.reference) == ("captured", 1000, 0)


def test_transient_errors_are_counted_per_idempotency_key(gateway):
    with pytest.raises(GatewayRetryableError):
        authorize(gateway, "tok_transientError", key="pay_1")

    with pytest.raises(GatewayRetryableError):
        authorize(gateway, "tok_transientError", key="pay_2")


def test_lost_response_charged_once_and_known_to_retrieve(gateway):
    with pytest.raises(GatewayResponseLost):
        authorize(gateway, "tok_responseLost", amount=2500)
    with pytest.raises(GatewayResponseLost):
        authorize(gateway, "tok_responseLost", amount=2500)

    found = gateway.retrieve(idempotency_key="pay_1")

    assert found.status == "captured"
    assert found.amount == 2500
    assert SimulatedCharge.objects.count() == 1
    assert charge_state(found.reference) == ("captured", 2500, 0)


def test_retrieve_of_an_unknown_key_is_none(gateway):
    assert gateway.retrieve(idempotency_key="never-sent") is None


# --- idempotency ----------------------------------------------------------------------------------


def test_repeat_authorize_returns_the_first_result_and_never_charges_twice(gateway):
    first = authorize(gateway, "tok_visa")

    again = authorize(gateway, "tok_visa")

    assert again == first
    assert SimulatedCharge.objects.count() == 1
    assert charge_state(first.reference) == ("captured", 1000, 0)


def test_repeat_authorize_after_a_refund_still_answers_what_it_first_answered(gateway):
    first = authorize(gateway, "tok_visa")
    gateway.refund(reference=first.reference, amount=1000, idempotency_key="re_1")

    again = authorize(gateway, "tok_visa")

    assert again.status == "captured"
    assert charge_state(first.reference) == ("refunded", 1000, 1000)


@pytest.mark.parametrize(
    "changed", [{"amount": 1001}, {"currency": "EUR"}, {"token": "tok_mastercard"}, {"capture": False}]
)
def test_authorize_key_reused_with_other_parameters_is_refused(gateway, changed):
    authorize(gateway, "tok_visa")
    params = {"token": "tok_visa", "amount": 1000, "currency": "USD", "capture": True} | changed

    with pytest.raises(GatewayError) as refused:
        gateway.authorize(idempotency_key="pay_1", **params)

    assert refused.value.code == "idempotency_key_reused"
    assert SimulatedCharge.objects.count() == 1


def test_gateway_refuses_to_join_the_callers_transaction(gateway):
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        authorize(gateway, "tok_visa")

    assert not SimulatedCharge.objects.exists()


# --- capture --------------------------------------------------------------------------------------


@pytest.fixture
def authorized(gateway) -> str:
    return authorize(gateway, "tok_visa", capture=False).reference


def test_partial_capture_captures_only_that_amount(gateway, authorized):
    result = gateway.capture(reference=authorized, amount=600, idempotency_key="cap_1")

    assert (result.status, result.amount) == ("captured", 600)
    assert charge_state(authorized) == ("captured", 600, 0)


def test_capture_above_the_authorized_amount_is_refused_and_changes_nothing(gateway, authorized):
    with pytest.raises(GatewayError) as refused:
        gateway.capture(reference=authorized, amount=1001, idempotency_key="cap_1")

    assert refused.value.code == "amount_too_large"
    assert charge_state(authorized) == ("authorized", 0, 0)
    assert gateway.capture(reference=authorized, amount=1000, idempotency_key="cap_2").status == "captured"


def test_repeat_capture_returns_the_first_result_and_a_second_capture_is_refused(gateway, authorized):
    first = gateway.capture(reference=authorized, amount=700, idempotency_key="cap_1")

    again = gateway.capture(reference=authorized, amount=700, idempotency_key="cap_1")
    with pytest.raises(GatewayError) as refused:
        gateway.capture(reference=authorized, amount=300, idempotency_key="cap_2")

    assert again == first
    assert refused.value.code == "payment_intent_unexpected_state"
    assert charge_state(authorized) == ("captured", 700, 0)


def test_capture_of_an_elevated_risk_authorization(gateway):
    reference = authorize(gateway, "tok_riskLevelElevated").reference

    result = gateway.capture(reference=reference, amount=1000, idempotency_key="cap_1")

    assert result.status == "captured"
    assert result.risk_level == "elevated"
    assert charge_state(reference) == ("captured", 1000, 0)


def test_operations_on_an_unknown_reference_are_refused(gateway):
    with pytest.raises(GatewayError) as refused:
        gateway.capture(reference="sim_ch_NOPE", amount=1, idempotency_key="cap_1")

    assert refused.value.code == "resource_missing"


@pytest.mark.parametrize("amount", [0, -5, 10.5, True])
def test_non_positive_or_non_integer_amounts_are_refused(gateway, authorized, amount):
    with pytest.raises(GatewayError) as refused:
        gateway.capture(reference=authorized, amount=amount, idempotency_key="cap_1")

    assert refused.value.code == "amount_too_small"
    assert charge_state(authorized) == ("authorized", 0, 0)


# --- void -----------------------------------------------------------------------------------------


def test_void_releases_an_authorization_once(gateway, authorized):
    first = gateway.void(reference=authorized, idempotency_key="void_1")

    again = gateway.void(reference=authorized, idempotency_key="void_1")

    assert (first.status, first.amount) == ("voided", 1000)
    assert again == first
    assert charge_state(authorized) == ("voided", 0, 0)
    assert gateway.retrieve(idempotency_key="pay_1").status == "voided"


def test_void_of_a_captured_charge_is_refused(gateway):
    reference = authorize(gateway, "tok_visa").reference

    with pytest.raises(GatewayError) as refused:
        gateway.void(reference=reference, idempotency_key="void_1")

    assert refused.value.code == "payment_intent_unexpected_state"
    assert charge_state(reference) == ("captured", 1000, 0)


def test_capture_after_void_is_refused(gateway, authorized):
    gateway.void(reference=authorized, idempotency_key="void_1")

    with pytest.raises(GatewayError) as refused:
        gateway.capture(reference=authorized, amount=1000, idempotency_key="cap_1")

    assert refused.value.code == "payment_intent_unexpected_state"


# --- refund ---------------------------------------------------------------------------------------


@pytest.fixture
def captured(gateway) -> str:
    return authorize(gateway, "tok_visa").reference


def test_partial_refunds_up_to_the_captured_amount(gateway, captured):
    first = gateway.refund(reference=captured, amount=400, idempotency_key="re_1")
    assert charge_state(captured) == ("captured", 1000, 400)

    last = gateway.refund(reference=captured, amount=600, idempotency_key="re_2")

    assert (first.status, first.amount, last.amount) == ("refunded", 400, 600)
    assert charge_state(captured) == ("refunded", 1000, 1000)
    assert gateway.retrieve(idempotency_key="pay_1").status == "refunded"


def test_refund_above_what_is_left_is_refused_and_changes_nothing(gateway, captured):
    gateway.refund(reference=captured, amount=700, idempotency_key="re_1")

    with pytest.raises(GatewayError) as refused:
        gateway.refund(reference=captured, amount=301, idempotency_key="re_2")

    assert refused.value.code == "amount_too_large"
    assert charge_state(captured) == ("captured", 1000, 700)


def test_refund_is_bounded_by_a_partial_capture(gateway, authorized):
    gateway.capture(reference=authorized, amount=600, idempotency_key="cap_1")

    with pytest.raises(GatewayError) as refused:
        gateway.refund(reference=authorized, amount=601, idempotency_key="re_1")

    assert refused.value.code == "amount_too_large"
    assert gateway.refund(reference=authorized, amount=600, idempotency_key="re_2").status == "refunded"
    assert charge_state(authorized) == ("refunded", 600, 600)


def test_repeat_refund_returns_the_first_result_and_refunds_once(gateway, captured):
    first = gateway.refund(reference=captured, amount=300, idempotency_key="re_1")

    again = gateway.refund(reference=captured, amount=300, idempotency_key="re_1")

    assert again == first
    assert charge_state(captured) == ("captured", 1000, 300)


def test_refund_of_an_uncaptured_authorization_is_refused(gateway, authorized):
    with pytest.raises(GatewayError) as refused:
        gateway.refund(reference=authorized, amount=100, idempotency_key="re_1")

    assert refused.value.code == "payment_intent_unexpected_state"


def test_refund_of_a_fully_refunded_charge_is_refused(gateway, captured):
    gateway.refund(reference=captured, amount=1000, idempotency_key="re_1")

    with pytest.raises(GatewayError) as refused:
        gateway.refund(reference=captured, amount=1, idempotency_key="re_2")

    assert refused.value.code == "charge_already_refunded"


@pytest.mark.parametrize(
    ("operation", "params"),
    [("refund", {"amount": 301}), ("capture", {"amount": 300}), ("void", {})],
)
def test_operation_key_reused_for_another_operation_is_refused(gateway, captured, operation, params):
    gateway.refund(reference=captured, amount=300, idempotency_key="op_1")

    with pytest.raises(GatewayError) as refused:
        getattr(gateway, operation)(reference=captured, idempotency_key="op_1", **params)

    assert refused.value.code == "idempotency_key_reused"
    assert charge_state(captured) == ("captured", 1000, 300)


# --- payouts ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_simulated_payouts_settle_at_once_by_destination_and_repeat_by_key():
    gateway = SimulatedGateway()
    assert gateway.payout_destination_check(destination="btok_success") == PayoutDestination(
        "bank_account", "6789"
    )
    with pytest.raises(UnknownPaymentMethod):
        gateway.payout_destination_check(destination="btok_nope")

    paid = gateway.create_payout(
        amount=500, currency="USD", destination="btok_success", idempotency_key="po_1"
    )
    failed = gateway.create_payout(
        amount=500, currency="USD", destination="btok_accountClosed", idempotency_key="po_2"
    )
    again = gateway.create_payout(
        amount=500, currency="USD", destination="btok_success", idempotency_key="po_1"
    )

    assert (paid.status, failed.status, failed.failure_code) == ("paid", "failed", "account_closed")
    assert again.reference == paid.reference
    assert gateway.retrieve_payout(idempotency_key="po_2").status == "failed"
    assert gateway.retrieve_payout(idempotency_key="po_never") is None
    with pytest.raises(GatewayError) as reused:
        gateway.create_payout(amount=900, currency="USD", destination="btok_success", idempotency_key="po_1")
    assert reused.value.code == "idempotency_key_reused"
