"""Reading Authorize.Net's answers (the SDK's parsed objects) in the gateway interface's terms.

- `refusal(response)`: a request refused as a whole (`messages.resultCode` "Error" and no
  transaction answer) as the GatewayError it means, or None;
- `Answer`: what a createTransaction answer says of its transaction (responseCode, reason, transId,
  the masked card), and `result_of` turns it into a GatewayResult or raises what it means;
- `details_result`: a transaction's details (its status) as the result of the charge they describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.core.scrubbing import scrub
from apps.gateways.authorizenet import codes
from apps.gateways.authorizenet.messages import to_minor
from apps.gateways.base import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayRetryableError,
    ResultStatus,
    UnknownPaymentMethod,
)

BRANDS = {
    "visa": "visa",
    "mastercard": "mastercard",
    "americanexpress": "amex",
    "discover": "discover",
    "jcb": "jcb",
    "dinersclub": "diners",
}


def text(value: Any) -> str:
    """A simple value of a parsed answer as text ("" when absent)."""
    return "" if value is None else str(value)


def result_code(response: Any) -> tuple[str, list[tuple[str, str]]]:
    """`messages.resultCode` ("Ok" or "Error") and its (code, text) messages."""
    messages = getattr(response, "messages", None)
    if messages is None:
        return "", []
    return text(messages.resultCode), [(text(m.code), text(m.text)) for m in messages.message]


def refusal(response: Any, *, token_problem: type[GatewayError] | None = None) -> GatewayError | None:
    """The error a whole-request refusal means, or None when the request was not refused.

    `token_problem`: what an unusable Accept.js nonce means here (UnknownPaymentMethod when
    checking a token; None: it stays a plain GatewayError the caller looks at)."""
    result, messages = result_code(response)
    if result == "Ok":
        return None
    code, message = messages[0] if messages else ("", "The request was refused.")
    if code in codes.AUTHENTICATION_MESSAGES:
        # Never repeat Authorize.Net's words: they may name the login.
        return GatewayError(
            f"Authorize.Net refused the credentials ({code}); check AUTHORIZENET_API_LOGIN_ID and "
            "AUTHORIZENET_TRANSACTION_KEY.",
            code="gateway_authentication_failed",
        )
    if code in codes.RETRYABLE_MESSAGES:
        return GatewayRetryableError(
            f"Authorize.Net is unavailable ({code}: {message})", code="gateway_unavailable"
        )
    if code in codes.NOT_FOUND_MESSAGES:
        return (
            UnknownPaymentMethod(f"Authorize.Net: {message}")
            if token_problem
            else GatewayError(f"Authorize.Net: {message}", code="resource_missing")
        )
    if code in codes.TOKEN_MESSAGES:
        return (token_problem or GatewayError)(f"Authorize.Net: {message} ({code})", code="resource_missing")
    return GatewayError(f"Authorize.Net refused the request ({code}: {message})", code="gateway_bad_request")


@dataclass(frozen=True)
class Answer:
    """A createTransaction answer's transaction: responseCode ("" when there is none), its reason
    code and text, the transId (of the first transaction, for a duplicate) and the masked card."""

    code: str
    reason: str
    message: str
    trans_id: str
    brand: str = ""
    last4: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, response: Any) -> Answer:
        result, messages = result_code(response)
        found = getattr(response, "transactionResponse", None)
        raw: dict[str, Any] = {"refId": text(getattr(response, "refId", None)), "resultCode": result}
        raw["messages"] = [{"code": code, "text": message} for code, message in messages]
        if found is None:
            return cls(
                "", messages[0][0] if messages else "", messages[0][1] if messages else "", "", raw=raw
            )
        errors = [
            (text(e.errorCode), text(e.errorText)) for e in (found.errors.error if found.errors else [])
        ]
        notes = [
            (text(m.code), text(m.description)) for m in (found.messages.message if found.messages else [])
        ]
        reason, message = (errors or notes or [("", "")])[0]
        trans_id = text(found.transId)
        account = text(found.accountNumber)
        raw["transactionResponse"] = scrub(
            {
                "responseCode": text(found.responseCode),
                "authCode": text(found.authCode),
                "avsResultCode": text(found.avsResultCode),
                "cvvResultCode": text(found.cvvResultCode),
                "transId": trans_id,
                "refTransID": text(found.refTransID),
                "accountNumber": account,
                "accountType": text(found.accountType),
                "errors": [{"errorCode": c, "errorText": t} for c, t in errors],
                "messages": [{"code": c, "description": t} for c, t in notes],
            }
        )
        return cls(
            code=text(found.responseCode),
            reason=reason,
            message=message,
            trans_id="" if trans_id == "0" else trans_id,
            brand=brand_of(text(found.accountType)),
            last4=account[-4:] if account[-4:].isdigit() else "",
            raw=raw,
        )

    def result(
        self, *, approved: ResultStatus, amount: int, currency: str, reference: str = ""
    ) -> GatewayResult:
        """The transaction's outcome as a result; raises for an outcome that is not one: a
        processor error worth retrying (GatewayRetryableError) or one after which the card may have
        been charged (GatewayResponseLost). A duplicate is the caller's to resolve."""
        common: dict[str, Any] = {
            "reference": self.trans_id or reference,
            "amount": amount,
            "currency": currency.upper(),
            "card_brand": self.brand,
            "card_last4": self.last4,
            "raw": self.raw,
        }
        if self.code == codes.APPROVED:
            return GatewayResult(status=approved, **common)
        if self.code == codes.HELD:
            # Authorized, and held by the Fraud Detection Suite until someone decides.
            return GatewayResult(status="authorized", risk_level="elevated", **common)
        if self.code == codes.DECLINED:
            return GatewayResult(
                status="failed",
                failure_code=codes.decline_code(self.reason),
                failure_message=self.message,
                **common,
            )
        if self.reason in codes.UNKNOWN_REASONS:
            raise GatewayResponseLost(
                f"Authorize.Net could not tell whether the card was charged ({self.reason}: {self.message})",
                code="gateway_outcome_unknown",
            )
        if self.reason in codes.RETRYABLE_REASONS:
            raise GatewayRetryableError(
                f"Authorize.Net's processor failed ({self.reason}: {self.message})",
                code="gateway_processor_error",
            )
        return GatewayResult(
            status="failed",
            failure_code=codes.error_code(self.reason),
            failure_message=self.message,
            **common,
        )


def brand_of(account_type: str) -> str:
    return BRANDS.get(account_type.replace(" ", "").lower(), account_type.lower()[:20])


@dataclass(frozen=True)
class Details:
    """A transaction as getTransactionDetails describes it."""

    trans_id: str
    status: str
    type: str
    reason: str
    message: str
    auth_amount: str
    settle_amount: str
    invoice_number: str
    brand: str
    last4: str
    raw: dict[str, Any]

    @classmethod
    def of(cls, response: Any) -> Details:
        found = response.transaction
        card = found.payment.creditCard if found.payment is not None else None
        number = text(card.cardNumber) if card is not None else ""
        invoice = text(found.order.invoiceNumber) if found.order is not None else ""
        values = {
            "trans_id": text(found.transId),
            "status": text(found.transactionStatus),
            "type": text(found.transactionType),
            "reason": text(found.responseReasonCode),
            "message": text(found.responseReasonDescription),
            "auth_amount": text(found.authAmount),
            "settle_amount": text(found.settleAmount),
            "invoice_number": invoice,
            "brand": brand_of(text(card.cardType)) if card is not None else "",
            "last4": number[-4:] if number[-4:].isdigit() else "",
        }
        return cls(**values, raw=scrub({"transaction": values}))

    def amount(self, currency: str) -> int:
        """What the transaction moved: what it captured (its settle amount) once captured, else
        what was authorized."""
        captured = self.status in codes.CAPTURED_STATUSES or self.status in codes.REFUNDED_STATUSES
        return to_minor((self.settle_amount if captured else "") or self.auth_amount or "0", currency)

    def result(self, *, currency: str) -> GatewayResult:
        """The charge's state as a result; a state Authorize.Net has not settled on raises
        GatewayRetryableError (ask again later)."""
        common: dict[str, Any] = {
            "reference": self.trans_id,
            "currency": currency.upper(),
            "card_brand": self.brand,
            "card_last4": self.last4,
            "raw": self.raw,
        }
        status = self.status
        if status in codes.CAPTURED_STATUSES:
            return GatewayResult(status="captured", amount=self.amount(currency), **common)
        if status in codes.AUTHORIZED_STATUSES:
            return GatewayResult(status="authorized", amount=self.amount(currency), **common)
        if status in codes.HELD_STATUSES:
            return GatewayResult(
                status="authorized", amount=self.amount(currency), risk_level="elevated", **common
            )
        if status in codes.VOIDED_STATUSES:
            return GatewayResult(status="voided", amount=self.amount(currency), **common)
        if status in codes.REFUNDED_STATUSES:
            return GatewayResult(status="refunded", amount=self.amount(currency), **common)
        if status in codes.FAILED_STATUSES:
            failure = (
                codes.decline_code(self.reason) if status == "declined" else codes.error_code(self.reason)
            )
            return GatewayResult(
                status="failed",
                amount=self.amount(currency),
                failure_code=failure if status != "expired" else "authorization_expired",
                failure_message=self.message,
                **common,
            )
        raise GatewayRetryableError(
            f"Authorize.Net transaction {self.trans_id} is {status or 'in no known state'}.",
            code="gateway_outcome_pending",
        )
