"""The requests Paydesk sends to Authorize.Net, built with the SDK's `apicontractsv1` types.

Amounts go out as decimals in the currency's major unit (Authorize.Net's `amount`), from Paydesk's
integer minor units, and come back the same way; `to_major` / `to_minor` convert exactly.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from apps.core.money import CURRENCY_EXPONENTS
from apps.gateways.authorizenet.wire import contracts
from apps.gateways.base import GatewayError
from apps.gateways.payment_methods import ANET_NONCE_PREFIX, authorizenet_token

# What Accept.js calls the payment data of a nonce made in a browser.
ACCEPT_DESCRIPTOR = "COMMON.ACCEPT.INAPP.PAYMENT"
CHARGE_TYPES = {True: "authCaptureTransaction", False: "authOnlyTransaction"}
UNSETTLED_PAGE = 1000  # Authorize.Net's largest page of a transaction list


def to_major(amount: int, currency: str) -> Decimal:
    exponent = CURRENCY_EXPONENTS[currency.upper()]
    return Decimal(amount).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def to_minor(amount: Any, currency: str) -> int:
    """An answer's decimal amount in minor units; one that does not fit the currency is refused."""
    minor = Decimal(str(amount)).scaleb(CURRENCY_EXPONENTS[currency.upper()])
    if minor != minor.to_integral_value():
        raise GatewayError(
            f"Authorize.Net answered an amount of {amount} {currency}.", code="gateway_bad_answer"
        )
    return int(minor)


def _payment(token: str) -> tuple[str, Any]:
    """The transaction's payment: ("payment", paymentType) for a nonce, ("profile", …) for a
    stored customer payment profile (the only other token `authorizenet_token` lets through)."""
    kind, value = authorizenet_token(token)
    if kind == ANET_NONCE_PREFIX:
        opaque = contracts.opaqueDataType()
        opaque.dataDescriptor, opaque.dataValue = ACCEPT_DESCRIPTOR, value
        payment = contracts.paymentType()
        payment.opaqueData = opaque
        return "payment", payment
    customer_profile_id, payment_profile_id = value.split("/")
    profile = contracts.customerProfilePaymentType()
    profile.customerProfileId = customer_profile_id
    profile.paymentProfile = contracts.paymentProfile()
    profile.paymentProfile.paymentProfileId = payment_profile_id
    return "profile", profile


def _create(transaction_request: Any, *, reference: str = "") -> Any:
    request = contracts.createTransactionRequest()
    if reference:
        request.refId = reference
    request.transactionRequest = transaction_request
    return request


def _creating(kind: str, *, amount: int, currency: str, key: str, reference: str) -> Any:
    """A transaction request that creates a transaction, sent under our reference (its invoice
    number) with the duplicate window, so a resend is recognised as the first one."""
    transaction_request = contracts.transactionRequestType()
    transaction_request.transactionType = kind
    transaction_request.amount = to_major(amount, currency)
    transaction_request.currencyCode = currency.upper()
    order = contracts.orderType()
    order.invoiceNumber = reference
    order.description = f"Paydesk {key}"[:255]
    transaction_request.order = order
    window = contracts.settingType()
    window.settingName = "duplicateWindow"
    window.settingValue = str(settings.AUTHORIZENET_DUPLICATE_WINDOW_SECONDS)
    transaction_request.transactionSettings = contracts.ArrayOfSetting()
    transaction_request.transactionSettings.setting.append(window)
    return transaction_request


def charge(*, token: str, amount: int, currency: str, capture: bool, key: str, reference: str) -> Any:
    """authCaptureTransaction (capture) or authOnlyTransaction on a nonce or a customer profile."""
    transaction_request = _creating(
        CHARGE_TYPES[capture], amount=amount, currency=currency, key=key, reference=reference
    )
    field, payment = _payment(token)
    setattr(transaction_request, field, payment)
    return _create(transaction_request, reference=reference)


def refund(*, trans_id: str, card_last4: str, amount: int, currency: str, key: str, reference: str) -> Any:
    """refundTransaction of a settled transaction: Authorize.Net wants the card's last four digits
    and "XXXX" for its expiry date."""
    transaction_request = _creating(
        "refundTransaction", amount=amount, currency=currency, key=key, reference=reference
    )
    card = contracts.creditCardType()
    card.cardNumber, card.expirationDate = card_last4, "XXXX"
    transaction_request.payment = contracts.paymentType()
    transaction_request.payment.creditCard = card
    transaction_request.refTransId = trans_id
    return _create(transaction_request, reference=reference)


def prior_auth_capture(*, trans_id: str, amount: int, currency: str) -> Any:
    """Captures `amount` (all or part) of an authorization; the rest is released."""
    transaction_request = contracts.transactionRequestType()
    transaction_request.transactionType = "priorAuthCaptureTransaction"
    transaction_request.amount = to_major(amount, currency)
    transaction_request.refTransId = trans_id
    return _create(transaction_request)


def void(*, trans_id: str) -> Any:
    transaction_request = contracts.transactionRequestType()
    transaction_request.transactionType = "voidTransaction"
    transaction_request.refTransId = trans_id
    return _create(transaction_request)


def update_held(*, trans_id: str, approve: bool) -> Any:
    """A decision on a transaction the Fraud Detection Suite held for review."""
    request = contracts.updateHeldTransactionRequest()
    request.heldTransactionRequest = contracts.heldTransactionRequestType()
    request.heldTransactionRequest.action = "approve" if approve else "decline"
    request.heldTransactionRequest.refTransId = trans_id
    return request


def details(*, trans_id: str) -> Any:
    request = contracts.getTransactionDetailsRequest()
    request.transId = trans_id
    return request


def unsettled(*, page: int, held_only: bool) -> Any:
    """One page of the unsettled transactions, newest first (`held_only`: those awaiting approval)."""
    request = contracts.getUnsettledTransactionListRequest()
    if held_only:
        request.status = "pendingApproval"
    request.sorting = contracts.TransactionListSorting()
    request.sorting.orderBy, request.sorting.orderDescending = "submitTimeUTC", True
    request.paging = contracts.Paging()
    request.paging.limit, request.paging.offset = UNSETTLED_PAGE, page
    return request


def settled_batches(*, first: datetime, last: datetime) -> Any:
    request = contracts.getSettledBatchListRequest()
    request.firstSettlementDate, request.lastSettlementDate = first, last
    return request


def batch_transactions(*, batch_id: str, page: int) -> Any:
    request = contracts.getTransactionListRequest()
    request.batchId = batch_id
    request.sorting = contracts.TransactionListSorting()
    request.sorting.orderBy, request.sorting.orderDescending = "submitTimeUTC", True
    request.paging = contracts.Paging()
    request.paging.limit, request.paging.offset = UNSETTLED_PAGE, page
    return request


def payment_profile(*, token: str) -> Any:
    customer_profile_id, payment_profile_id = authorizenet_token(token)[1].split("/")
    request = contracts.getCustomerPaymentProfileRequest()
    request.customerProfileId = customer_profile_id
    request.customerPaymentProfileId = payment_profile_id
    return request
