"""AuthorizeNetGateway: what is Authorize.Net's own, over real HTTP against the fake XML API.

(What every card gateway does is tested on Stripe and Authorize.Net alike in
test_gateway_behaviour.py.)
"""

import threading
from decimal import Decimal

import pytest

from apps.gateways.authorizenet import AuthorizeNetGateway
from apps.gateways.authorizenet.submissions import reference_for
from apps.gateways.authorizenet.wire import Unparsable, from_xml
from apps.gateways.base import GatewayError, GatewayResponseLost, GatewayRetryableError, UnknownPaymentMethod
from apps.gateways.models import AuthorizeNetSubmission
from tests.fakes.authorizenet import FakeAuthorizeNet

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(fake_authorizenet):
    return AuthorizeNetGateway()


def _authorize(gateway, token, *, key="pay_1", amount=5000, capture=True, currency="USD"):
    return gateway.authorize(
        amount=amount, currency=currency, token=token, idempotency_key=key, capture=capture
    )


# --- the requests ---------------------------------------------------------------------------------


def test_a_charge_carries_a_20_character_reference_the_duplicate_window_and_the_nonce(
    gateway, fake_authorizenet
):
    token = fake_authorizenet.nonce("visa")

    result = _authorize(gateway, token, key="pay_01JD0000000000000000000000", amount=1234, capture=True)

    [charge] = fake_authorizenet.sent("authCaptureTransaction")
    reference = reference_for("pay_01JD0000000000000000000000")
    assert len(reference) == 20
    assert charge.fields["invoiceNumber"] == charge.fields["refId"] == reference
    assert charge.fields["description"] == "Paydesk pay_01JD0000000000000000000000"
    assert charge.fields["amount"] == "12.34"
    assert charge.fields["currencyCode"] == "USD"
    assert charge.fields["duplicateWindow"] == "28800"
    assert charge.fields["dataValue"] == token.removeprefix("anet_nonce:")
    assert result.status == "captured"
    assert (
        AuthorizeNetSubmission.objects.get(key="pay_01JD0000000000000000000000").trans_id == result.reference
    )


def test_an_authorization_only_is_auth_only_and_a_profile_is_sent_as_one(gateway, fake_authorizenet):
    token = fake_authorizenet.profile("mastercard")

    result = _authorize(gateway, token, capture=False)

    [charge] = fake_authorizenet.sent("authOnlyTransaction")
    customer, payment = token.removeprefix("anet_profile:").split("/")
    assert (charge.fields["customerProfileId"], charge.fields["paymentProfileId"]) == (customer, payment)
    assert "dataValue" not in charge.fields
    assert (result.status, result.card_brand, result.card_last4) == ("authorized", "mastercard", "0015")


def test_a_zero_decimal_currency_goes_out_in_whole_units(gateway, fake_authorizenet):
    _authorize(gateway, fake_authorizenet.nonce(), amount=500, currency="JPY")

    assert Decimal(fake_authorizenet.sent("authCaptureTransaction")[0].fields["amount"]) == Decimal(500)


# --- reading the answers --------------------------------------------------------------------------


def test_answers_are_read_with_and_without_a_byte_order_mark():
    document = (
        b'<?xml version="1.0" encoding="utf-8"?><getTransactionDetailsResponse '
        b'xmlns="AnetApi/xml/v1/schema/AnetApiSchema.xsd"><messages><resultCode>Ok</resultCode>'
        b"<message><code>I00001</code><text>Successful.</text></message></messages></getTransactionDetailsResponse>"
    )

    for body in (b"\xef\xbb\xbf" + document, document):
        assert str(from_xml(body).messages.resultCode) == "Ok"
    with pytest.raises(Unparsable):
        from_xml(document[:60])


def test_an_element_the_sdks_schema_does_not_know_does_not_hide_the_transaction_id(
    gateway, fake_authorizenet
):
    # Strict PyXB parsing drops everything after an unknown element: the transId would be lost.
    fake_authorizenet.unknown_element_next(1)

    result = _authorize(gateway, fake_authorizenet.nonce())

    assert result.status == "captured"
    assert result.reference == fake_authorizenet.transactions[0]["transId"]


def test_an_unreadable_answer_to_a_charge_is_unknown_and_retrieve_finds_the_charge(
    gateway, fake_authorizenet
):
    fake_authorizenet.garble_next(1)

    with pytest.raises(GatewayResponseLost) as lost:
        _authorize(gateway, fake_authorizenet.nonce(), key="pay_garbled")
    found = gateway.retrieve(idempotency_key="pay_garbled")

    assert lost.value.code == "gateway_unreadable"
    assert (found.status, found.amount) == ("captured", 5000)
    assert fake_authorizenet.charges_made == 1


def test_an_unreadable_answer_to_a_look_up_is_only_retryable(gateway, fake_authorizenet):
    result = _authorize(gateway, fake_authorizenet.nonce(), key="pay_x")
    AuthorizeNetSubmission.objects.filter(key="pay_x").update(trans_id="")
    fake_authorizenet.garble_next(1)

    with pytest.raises(GatewayRetryableError):
        gateway.retrieve(idempotency_key="pay_x")
    assert gateway.retrieve(idempotency_key="pay_x").reference == result.reference


# --- response codes -------------------------------------------------------------------------------


def test_a_processor_error_is_retryable_and_the_retry_charges_once(gateway, fake_authorizenet):
    token = fake_authorizenet.nonce()
    fake_authorizenet.processor_error_next(1, reason="19")

    with pytest.raises(GatewayRetryableError) as raised:
        _authorize(gateway, token, key="pay_19")
    result = _authorize(gateway, token, key="pay_19")

    assert raised.value.code == "gateway_processor_error"
    assert result.status == "captured"
    assert fake_authorizenet.charges_made == 1


def test_a_processor_timeout_whose_void_failed_is_unknown(gateway, fake_authorizenet):
    fake_authorizenet.processor_error_next(1, reason="120")

    with pytest.raises(GatewayResponseLost) as raised:
        _authorize(gateway, fake_authorizenet.nonce())

    assert raised.value.code == "gateway_outcome_unknown"


def test_a_fraud_decline_is_fraudulent(gateway, fake_authorizenet):
    result = _authorize(gateway, fake_authorizenet.nonce("fraudDeclined"))

    assert (result.status, result.failure_code) == ("failed", "fraudulent")


def test_a_spent_or_unknown_nonce_fails_the_charge_as_resource_missing(gateway, fake_authorizenet):
    token = fake_authorizenet.nonce()
    _authorize(gateway, token, key="pay_first")

    again = _authorize(gateway, token, key="pay_second")
    stranger = _authorize(gateway, "anet_nonce:bm90IGEgbm9uY2U=", key="pay_third")

    assert (again.status, again.failure_code) == ("failed", "resource_missing")
    assert (stranger.status, stranger.failure_code) == ("failed", "resource_missing")
    assert fake_authorizenet.charges_made == 1


def test_a_nonce_refused_on_a_repeat_is_unknown_not_a_decline(gateway, fake_authorizenet):
    # The first send spent the nonce (an expired card: no transaction) and its answer was lost.
    token = fake_authorizenet.nonce("expired")
    fake_authorizenet.fail_after_charge_next(1)
    with pytest.raises(GatewayRetryableError):
        _authorize(gateway, token, key="pay_spent")

    with pytest.raises(GatewayResponseLost) as raised:
        _authorize(gateway, token, key="pay_spent")

    assert raised.value.code == "gateway_nonce_spent"
    assert gateway.retrieve(idempotency_key="pay_spent") is None  # nothing was ever charged


def test_bad_credentials_are_a_clear_non_retryable_error(fake_authorizenet, settings):
    gateway = AuthorizeNetGateway(transaction_key="not-the-key-123")

    with pytest.raises(GatewayError) as raised:
        _authorize(gateway, fake_authorizenet.nonce())

    assert not isinstance(raised.value, GatewayRetryableError | GatewayResponseLost)
    assert raised.value.code == "gateway_authentication_failed"
    assert "not-the-key-123" not in str(raised.value)
    assert fake_authorizenet.charges_made == 0


def test_missing_credentials_fail_without_calling_authorize_net(fake_authorizenet, settings):
    settings.AUTHORIZENET_TRANSACTION_KEY = ""

    with pytest.raises(GatewayError) as raised:
        _authorize(AuthorizeNetGateway(), fake_authorizenet.nonce())

    assert raised.value.code == "gateway_not_configured"
    assert fake_authorizenet.requests == []


# --- held for review ------------------------------------------------------------------------------


def test_a_held_charge_is_approved_at_authorize_net_when_captured(gateway, fake_authorizenet):
    held = _authorize(gateway, fake_authorizenet.nonce("held"), capture=False)
    assert fake_authorizenet.transaction(held.reference)["status"] == "FDSAuthorizedPendingReview"

    captured = gateway.capture(reference=held.reference, amount=5000, idempotency_key="pay_1:capture")

    [decision] = fake_authorizenet.sent("updateHeldTransactionRequest")
    assert (decision.fields["action"], decision.fields["refTransId"]) == ("approve", held.reference)
    assert len(fake_authorizenet.sent("priorAuthCaptureTransaction")) == 1
    assert (captured.status, captured.amount) == ("captured", 5000)
    assert fake_authorizenet.transaction(held.reference)["status"] == "capturedPendingSettlement"


def test_a_held_purchase_is_captured_by_its_approval_alone(gateway, fake_authorizenet):
    held = _authorize(gateway, fake_authorizenet.nonce("held"), capture=True)
    assert (held.status, held.risk_level) == ("authorized", "elevated")

    captured = gateway.capture(reference=held.reference, amount=5000, idempotency_key="pay_1:capture")

    assert captured.status == "captured"
    assert fake_authorizenet.sent("priorAuthCaptureTransaction") == []


def test_a_held_charge_is_declined_at_authorize_net_when_voided(gateway, fake_authorizenet):
    held = _authorize(gateway, fake_authorizenet.nonce("held"), capture=False)

    voided = gateway.void(reference=held.reference, idempotency_key="pay_1:void")

    [decision] = fake_authorizenet.sent("updateHeldTransactionRequest")
    assert decision.fields["action"] == "decline"
    assert fake_authorizenet.sent("voidTransaction") == []
    assert voided.status == "voided"
    assert fake_authorizenet.transaction(held.reference)["status"] == "voided"


# --- refunds: settled or not ----------------------------------------------------------------------


def test_a_full_refund_before_settlement_voids_the_charge(gateway, fake_authorizenet):
    charged = _authorize(gateway, fake_authorizenet.nonce(), amount=2000)

    refunded = gateway.refund(reference=charged.reference, amount=2000, idempotency_key="re_1")
    again = gateway.refund(reference=charged.reference, amount=2000, idempotency_key="re_1")

    assert (refunded.status, refunded.amount, refunded.reference) == ("refunded", 2000, charged.reference)
    assert again.status == "refunded"
    assert len(fake_authorizenet.sent("voidTransaction")) == 1
    assert fake_authorizenet.sent("refundTransaction") == []
    assert fake_authorizenet.transaction(charged.reference)["status"] == "voided"


def test_a_partial_refund_before_settlement_is_refused_and_nothing_is_sent(gateway, fake_authorizenet):
    charged = _authorize(gateway, fake_authorizenet.nonce(), amount=2000)

    refused = gateway.refund(reference=charged.reference, amount=500, idempotency_key="re_1")

    assert (refused.status, refused.failure_code) == ("failed", "charge_not_settled")
    assert fake_authorizenet.sent("voidTransaction") == fake_authorizenet.sent("refundTransaction") == []
    assert fake_authorizenet.transaction(charged.reference)["status"] == "capturedPendingSettlement"


def test_a_refund_after_settlement_is_a_refund_transaction_with_the_cards_last_four(
    gateway, fake_authorizenet
):
    charged = _authorize(gateway, fake_authorizenet.nonce(), amount=2000)
    fake_authorizenet.settle()

    refunded = gateway.refund(reference=charged.reference, amount=500, idempotency_key="re_1")

    [refund] = fake_authorizenet.sent("refundTransaction")
    assert (refund.fields["refTransId"], refund.fields["cardNumber"]) == (charged.reference, "1111")
    assert refund.fields["invoiceNumber"] == reference_for("re_1")
    assert refunded.status == "refunded"
    assert refunded.reference != charged.reference


# --- idempotency without an idempotency key -------------------------------------------------------


def test_the_duplicate_window_answers_a_resend_with_the_first_transaction(gateway, fake_authorizenet):
    token = fake_authorizenet.profile()  # reusable, unlike a nonce
    first = _authorize(gateway, token, key="pay_dup")
    AuthorizeNetSubmission.objects.all().delete()  # as if our record of it were lost

    again = _authorize(gateway, token, key="pay_dup")

    assert (again.status, again.reference) == ("captured", first.reference)
    assert len(fake_authorizenet.sent("authCaptureTransaction")) == 2
    assert fake_authorizenet.charges_made == 1


def test_a_repeat_finds_the_first_charge_by_its_reference_before_sending(gateway, fake_authorizenet):
    token = fake_authorizenet.nonce()
    fake_authorizenet.hang_next(1, seconds=3)
    with pytest.raises(GatewayResponseLost):
        _authorize(gateway, token, key="pay_again")

    again = _authorize(gateway, token, key="pay_again")

    assert again.status == "captured"
    assert len(fake_authorizenet.sent("authCaptureTransaction")) == 1
    assert len(fake_authorizenet.sent("getUnsettledTransactionListRequest")) >= 1


def test_retrieve_finds_a_settled_charge_in_its_batch(gateway, fake_authorizenet):
    fake_authorizenet.hang_next(1, seconds=3)
    with pytest.raises(GatewayResponseLost):
        _authorize(gateway, fake_authorizenet.nonce(), key="pay_settled", amount=700)
    fake_authorizenet.settle()

    found = gateway.retrieve(idempotency_key="pay_settled")

    assert (found.status, found.amount) == ("captured", 700)
    assert len(fake_authorizenet.sent("getTransactionListRequest")) == 1


def test_retrieve_of_a_key_never_sent_asks_nothing(gateway, fake_authorizenet):
    assert gateway.retrieve(idempotency_key="pay_never") is None
    assert fake_authorizenet.requests == []


def test_retrieve_does_not_call_a_recent_charge_never_charged_within_the_grace_period(
    gateway, fake_authorizenet, settings
):
    settings.AUTHORIZENET_NOT_FOUND_GRACE_SECONDS = 60
    fake_authorizenet.fail_next(1, status=503)
    with pytest.raises(GatewayRetryableError):
        _authorize(gateway, fake_authorizenet.nonce(), key="pay_recent")

    with pytest.raises(GatewayRetryableError) as raised:
        gateway.retrieve(idempotency_key="pay_recent")

    assert raised.value.code == "gateway_not_found_yet"


# --- tokens ---------------------------------------------------------------------------------------


def test_payment_method_check_asks_about_profiles_only(gateway, fake_authorizenet):
    gateway.payment_method_check(token=fake_authorizenet.nonce())
    gateway.payment_method_check(token=fake_authorizenet.profile())
    with pytest.raises(UnknownPaymentMethod):
        gateway.payment_method_check(token="anet_profile:123/456")
    with pytest.raises(UnknownPaymentMethod):
        gateway.payment_method_check(token="tok_visa")

    assert [r.element for r in fake_authorizenet.requests] == ["getCustomerPaymentProfileRequest"] * 2


def test_a_token_of_another_gateway_fails_the_charge_without_a_call(gateway, fake_authorizenet):
    result = _authorize(gateway, "tok_visa")

    assert (result.status, result.failure_code) == ("failed", "resource_missing")
    assert fake_authorizenet.requests == []


# --- one client per gateway, never a shared endpoint (sdk-python#173) -----------------------------


def test_gateways_of_one_process_each_keep_their_own_endpoint_under_threads(settings):
    with FakeAuthorizeNet() as first, FakeAuthorizeNet() as second:
        gateways = {
            first: AuthorizeNetGateway(
                url=first.url, login_id=first.login_id, transaction_key=first.transaction_key
            ),
            second: AuthorizeNetGateway(
                url=second.url, login_id=second.login_id, transaction_key=second.transaction_key
            ),
        }
        errors: list[BaseException] = []

        def run(fake: FakeAuthorizeNet) -> None:
            try:
                for _ in range(5):
                    gateways[fake].payment_method_check(token=fake.profile())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(fake,)) for fake in (first, second, first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert len(first.requests) == len(second.requests) == 10
