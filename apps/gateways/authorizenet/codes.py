"""Authorize.Net's answer codes in Paydesk's words (Stripe's failure codes, as every gateway speaks).

A transaction's `responseCode`: 1 approved, 2 declined, 3 error, 4 held for review. Its reason
(`transactionResponse.errors.error.errorCode`, or `messages.message.code` when approved or held) is
one of Authorize.Net's response reason codes (developer.authorize.net/api/reference/responseCodes):
- a decline's reason names the failure code of the failed payment;
- an error's reason says whether trying again may work (a processor outage: retryable), whether
  the outcome is unknown (the processor timed out and Authorize.Net's own void of it failed: the
  card may be charged, so reconcile), or neither (a refused request: a failed result).
A request refused as a whole has no transaction answer, only `messages` with a result code of
"Error" and an E000nn code: authentication, a record not found, a server that is busy...
"""

from __future__ import annotations

APPROVED, DECLINED, ERROR, HELD = "1", "2", "3", "4"

DUPLICATE = "11"  # "A duplicate transaction has been submitted." (with the first one's transId)
ALREADY_CAPTURED = "311"
ALREADY_VOIDED = "310"

# responseCode 2: why the card was declined.
DECLINE_CODES: dict[str, str] = {
    "2": "card_declined",
    "3": "call_issuer",
    "4": "pickup_card",
    "27": "incorrect_zip",  # AVS mismatch
    "44": "incorrect_cvc",
    "45": "incorrect_cvc",  # AVS and card code mismatch
    "65": "incorrect_cvc",
    "127": "incorrect_zip",
    "165": "incorrect_cvc",
    "250": "fraudulent",  # the card or address is blocked by the fraud filters
    "251": "fraudulent",  # declined by the Fraud Detection Suite
    "254": "fraudulent",  # declined after review
}
DEFAULT_DECLINE = "card_declined"

# responseCode 3 reasons that are the processor's trouble, not the request's: nothing was charged,
# the same call may succeed later.
RETRYABLE_REASONS = frozenset(
    {"19", "20", "21", "22", "23", "25", "26", "35", "57", "58", "59", "60", "61", "62", "63", "180", "181"}
)
# responseCode 3 reasons after which the card may have been charged: the processor did not answer
# in time and Authorize.Net's own void of the attempt failed. Only a look-up can tell.
UNKNOWN_REASONS = frozenset({"120", "121", "122"})

# responseCode 3 reasons that refuse the request: the failed result's code.
ERROR_CODES: dict[str, str] = {
    "5": "invalid_amount",
    "6": "incorrect_number",
    "7": "invalid_expiry_year",
    "8": "expired_card",
    "16": "resource_missing",  # the transaction cannot be found
    "17": "card_not_supported",
    "28": "card_not_supported",
    "33": "parameter_missing",
    "37": "incorrect_number",
    "47": "amount_too_large",  # capture more than authorized
    "54": "charge_not_refundable",  # a refund of a transaction that is not settled
    "55": "amount_too_large",  # refunds over what was captured
    "78": "invalid_cvc",
    ALREADY_VOIDED: "payment_intent_unexpected_state",
    ALREADY_CAPTURED: "payment_intent_unexpected_state",
    "315": "incorrect_number",
    "316": "invalid_expiry_year",
    "317": "expired_card",
    # A whole-request refusal of the payment: the nonce or the customer profile is unusable.
    "E00040": "resource_missing",
    "E00114": "resource_missing",
    "E00117": "resource_missing",
}
DEFAULT_ERROR = "processing_error"

# Whole-request refusals (messages.resultCode "Error"), by message code.
AUTHENTICATION_MESSAGES = frozenset({"E00007", "E00008", "E00011", "E00124"})
RETRYABLE_MESSAGES = frozenset({"E00001", "E00053", "E00104"})
NOT_FOUND_MESSAGES = frozenset({"E00040"})  # "The record cannot be found." (a profile, a transaction)
TOKEN_MESSAGES = frozenset({"E00114", "E00117"})  # an Accept.js nonce unknown, expired or already used
NO_RECORDS = "I00004"  # "No records found." on a list

# transactionDetails.transactionStatus of a charge, by what Paydesk calls it.
AUTHORIZED_STATUSES = frozenset({"authorizedPendingCapture"})
CAPTURED_STATUSES = frozenset({"capturedPendingSettlement", "settledSuccessfully"})
HELD_STATUSES = frozenset({"FDSPendingReview", "FDSAuthorizedPendingReview", "underReview"})
VOIDED_STATUSES = frozenset({"voided"})
FAILED_STATUSES = frozenset({"declined", "expired", "failedReview", "generalError"})
REFUNDED_STATUSES = frozenset({"refundPendingSettlement", "refundSettledSuccessfully"})
# Held, then approved: an authOnly is waiting for its capture.
HELD_AUTHORIZATION = "FDSAuthorizedPendingReview"
UNSETTLED = "capturedPendingSettlement"


def decline_code(reason: str) -> str:
    return DECLINE_CODES.get(reason, DEFAULT_DECLINE)


def error_code(reason: str) -> str:
    return ERROR_CODES.get(reason, DEFAULT_ERROR)
