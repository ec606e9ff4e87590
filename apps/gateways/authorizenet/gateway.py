"""Authorize.Net behind Paydesk's gateway interface (PAYMENT_GATEWAY=authorizenet).

How the interface maps onto Authorize.Net's transactions:
- authorize: `authCaptureTransaction` (capture=True) or `authOnlyTransaction`, paid with an
  Accept.js nonce or a customer payment profile (`anet_nonce:…`, `anet_profile:…`);
- capture: `priorAuthCaptureTransaction` of all or part of the authorization (the rest released);
- void: `voidTransaction`;
- refund: `refundTransaction` once the charge is settled; before settlement Authorize.Net refunds
  nothing, so a full refund voids the charge instead (and a partial one is refused,
  `charge_not_settled`, until the daily settlement);
- a transaction the Fraud Detection Suite holds (responseCode 4) is authorized with an elevated risk
  (the payment waits `in_review`); the reviewer's decision is sent as `updateHeldTransactionRequest`
  (approve on capture, decline on void) before anything else;
- retrieve: `getTransactionDetailsRequest` of the charge's transId, found by its reference in the
  transaction lists when the answer carrying it was lost (`lookup`).

Capture, void and refund first read the transaction's details: its state says what to send (a held
transaction is decided first; one already captured, voided or refunded by an earlier attempt of the
same step is answered as such), so repeating a step never moves money twice.

Idempotency without an idempotency key (`submissions`): a charge or refund is recorded before it is
sent; a repeat of its key looks the first transaction up before sending again, and the request's
duplicate window makes Authorize.Net answer a resend with the first transaction's id. A timeout,
an unreadable answer, or a processor failure after which Authorize.Net's own void failed is
"unknown" (GatewayResponseLost): the payment waits in `reconcile`, never a guess.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.gateways.authorizenet import codes, lookup, messages
from apps.gateways.authorizenet.answers import Answer, Details, refusal
from apps.gateways.authorizenet.submissions import submission_begin, submission_for, submission_learn
from apps.gateways.authorizenet.wire import AnetClient
from apps.gateways.base import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayRetryableError,
    NoPayouts,
    UnknownPaymentMethod,
)
from apps.gateways.models import AuthorizeNetSubmission
from apps.gateways.payment_methods import ANET_NONCE_PREFIX, authorizenet_token

CREATE = "createTransactionRequest"
Operation = AuthorizeNetSubmission.Operation


class AuthorizeNetGateway(NoPayouts):  # payouts: not yet
    name = "authorizenet"

    def __init__(
        self,
        *,
        login_id: str | None = None,
        transaction_key: str | None = None,
        url: str | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> None:
        self._client = AnetClient(
            login_id=settings.AUTHORIZENET_API_LOGIN_ID if login_id is None else login_id,
            transaction_key=settings.AUTHORIZENET_TRANSACTION_KEY
            if transaction_key is None
            else transaction_key,
            url=url or settings.AUTHORIZENET_API_URL,
            timeout=timeout
            or (settings.AUTHORIZENET_CONNECT_TIMEOUT_SECONDS, settings.AUTHORIZENET_TIMEOUT_SECONDS),
        )

    # --- the interface ----------------------------------------------------------------------------

    def authorize(
        self, *, amount: int, currency: str, token: str, idempotency_key: str, capture: bool
    ) -> GatewayResult:
        try:
            authorizenet_token(token)
        except UnknownPaymentMethod as unknown:
            return GatewayResult(
                status="failed",
                amount=amount,
                currency=currency,
                failure_code=unknown.code,
                failure_message=str(unknown),
            )
        submission, repeat = submission_begin(
            key=idempotency_key, operation=Operation.AUTHORIZE, amount=amount, currency=currency
        )
        if repeat:
            first = self._first(submission)
            if first is not None:
                return first
        request = messages.charge(
            token=token,
            amount=amount,
            currency=currency,
            capture=capture,
            key=idempotency_key,
            reference=submission.reference,
        )
        response = self._client.send(request, CREATE, moves_money=True)
        return self._created(
            response, submission, repeat=repeat, approved="captured" if capture else "authorized"
        )

    def payment_method_check(self, *, token: str) -> None:
        kind, _ = authorizenet_token(token)
        if kind == ANET_NONCE_PREFIX:
            return  # a nonce is good for one use: asking about it would spend it; the charge decides
        response = self._client.send(
            messages.payment_profile(token=token), "getCustomerPaymentProfileRequest", moves_money=False
        )
        problem = refusal(response, token_problem=UnknownPaymentMethod)
        if problem is not None:
            raise problem

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult:
        details = self._details(reference)
        currency = self._currency(details)
        if details.status in codes.HELD_STATUSES:
            decided = self._decide_held(details, approve=True, currency=currency)
            if decided is not None:
                return decided
            details = self._details(reference)
        if details.status in codes.CAPTURED_STATUSES:
            return details.result(currency=currency)  # captured by an earlier attempt, or by the approval
        if details.status not in codes.AUTHORIZED_STATUSES:
            return _unexpected(details, currency=currency, wanted="captured")
        request = messages.prior_auth_capture(trans_id=reference, amount=amount, currency=currency)
        answer = self._answer(self._client.send(request, CREATE, moves_money=True))
        if answer.code == codes.ERROR and answer.reason == codes.ALREADY_CAPTURED:
            return self._details(reference).result(currency=currency)  # a racing attempt got there first
        return answer.result(approved="captured", amount=amount, currency=currency, reference=reference)

    def void(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        details = self._details(reference)
        currency = self._currency(details)
        if details.status in codes.HELD_STATUSES:
            decided = self._decide_held(details, approve=False, currency=currency)
            return decided or GatewayResult(
                status="voided", reference=reference, amount=details.amount(currency), currency=currency
            )
        if details.status in codes.VOIDED_STATUSES:
            return details.result(currency=currency)  # voided by an earlier attempt
        if details.status not in codes.AUTHORIZED_STATUSES:
            # A captured charge is given back by a refund (which voids it while unsettled), not a void.
            return _unexpected(details, currency=currency, wanted="voided")
        return self._void(reference, amount=details.amount(currency), currency=currency)

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult:
        details = self._details(reference)
        currency = self._currency(details)
        submission, repeat = submission_begin(
            key=idempotency_key,
            operation=Operation.REFUND,
            amount=amount,
            currency=currency,
            ref_trans_id=reference,
        )
        if details.status == codes.UNSETTLED or (repeat and details.status in codes.VOIDED_STATUSES):
            return self._refund_unsettled(details, submission, amount=amount, currency=currency)
        if details.status != "settledSuccessfully":
            return _unexpected(details, currency=currency, wanted="refunded", code="charge_not_refundable")
        if repeat:
            first = self._first(submission)
            if first is not None:
                return first
        request = messages.refund(
            trans_id=reference,
            card_last4=details.last4 or "XXXX",
            amount=amount,
            currency=currency,
            key=idempotency_key,
            reference=submission.reference,
        )
        return self._created(
            self._client.send(request, CREATE, moves_money=True),
            submission,
            repeat=repeat,
            approved="refunded",
        )

    def retrieve(self, *, idempotency_key: str) -> GatewayResult | None:
        """What Authorize.Net knows of the charge sent with this key: None when it was never sent
        (no submission) or Authorize.Net has no transaction under its reference. A charge sent less
        than AUTHORIZENET_NOT_FOUND_GRACE_SECONDS ago may still be in flight there: not finding it
        yet raises GatewayRetryableError (ask again later), never "never charged"."""
        submission = submission_for(idempotency_key)
        if submission is None:
            return None
        trans_id = submission.trans_id or lookup.find_by_reference(self._client, submission.reference)
        if not trans_id:
            grace = timedelta(seconds=settings.AUTHORIZENET_NOT_FOUND_GRACE_SECONDS)
            if submission.updated_at > timezone.now() - grace:
                raise GatewayRetryableError(
                    f"Authorize.Net has no transaction {submission.reference} yet; it may still be in flight.",
                    code="gateway_not_found_yet",
                )
            return None
        submission_learn(submission, trans_id)
        return self._details(trans_id).result(currency=submission.currency)

    # --- steps ------------------------------------------------------------------------------------

    def _created(
        self, response: Any, submission: AuthorizeNetSubmission, *, repeat: bool, approved: Any
    ) -> GatewayResult:
        """The result of a request that created a transaction (a charge or a refund)."""
        answer = self._answer(response, token_spent_is_unknown=repeat)
        if answer.code == codes.ERROR and answer.reason == codes.DUPLICATE:
            # Sent before within the duplicate window: Authorize.Net names the first transaction.
            if not answer.trans_id:
                raise GatewayResponseLost(
                    "Authorize.Net reported a duplicate without its transaction.", code="gateway_duplicate"
                )
            submission_learn(submission, answer.trans_id)
            return self._details(answer.trans_id).result(currency=submission.currency)
        if answer.code in (codes.APPROVED, codes.DECLINED, codes.HELD):
            submission_learn(submission, answer.trans_id)
        return answer.result(approved=approved, amount=submission.amount, currency=submission.currency)

    def _first(self, submission: AuthorizeNetSubmission) -> GatewayResult | None:
        """What became of the first send of a submission; None when there is nothing to find (it
        never arrived, or failed on a processor error that charged nothing): send it again."""
        trans_id = submission.trans_id or lookup.find_by_reference(self._client, submission.reference)
        if not trans_id:
            return None
        details = self._details(trans_id)
        if details.status == "generalError":
            return None
        submission_learn(submission, trans_id)
        return details.result(currency=submission.currency)

    def _decide_held(self, details: Details, *, approve: bool, currency: str) -> GatewayResult | None:
        """Sends the decision on a held transaction; None once it is accepted (the caller reads the
        transaction again), a failed result when Authorize.Net refuses it."""
        response = self._client.send(
            messages.update_held(trans_id=details.trans_id, approve=approve),
            "updateHeldTransactionRequest",
            moves_money=True,
        )
        answer = self._answer(response)
        if answer.code in ("", codes.APPROVED):
            return None
        return answer.result(
            approved="voided", amount=details.amount(currency), currency=currency, reference=details.trans_id
        )

    def _void(self, trans_id: str, *, amount: int, currency: str) -> GatewayResult:
        answer = self._answer(self._client.send(messages.void(trans_id=trans_id), CREATE, moves_money=True))
        if answer.code == codes.ERROR and answer.reason == codes.ALREADY_VOIDED:
            return GatewayResult(
                status="voided", reference=trans_id, amount=amount, currency=currency, raw=answer.raw
            )
        return answer.result(approved="voided", amount=amount, currency=currency, reference=trans_id)

    def _refund_unsettled(
        self, details: Details, submission: AuthorizeNetSubmission, *, amount: int, currency: str
    ) -> GatewayResult:
        """A refund before settlement: the whole charge is voided (nothing has left the card yet);
        a part of it cannot be given back until the charge settles."""
        captured = details.amount(currency)
        if details.status in codes.VOIDED_STATUSES:  # voided by an earlier attempt of this refund
            return GatewayResult(
                status="refunded",
                reference=details.trans_id,
                amount=captured,
                currency=currency,
                raw=details.raw,
            )
        if amount != captured:
            return GatewayResult(
                status="failed",
                reference=details.trans_id,
                amount=amount,
                currency=currency,
                failure_code="charge_not_settled",
                failure_message="Authorize.Net refunds part of a charge only once it is settled (daily); "
                "until then only the whole charge can be refunded.",
            )
        voided = self._void(details.trans_id, amount=captured, currency=currency)
        if voided.status != "voided":
            return voided
        submission_learn(submission, details.trans_id)
        return GatewayResult(
            status="refunded", reference=details.trans_id, amount=captured, currency=currency, raw=voided.raw
        )

    def _details(self, trans_id: str) -> Details:
        response = self._client.send(
            messages.details(trans_id=trans_id), "getTransactionDetailsRequest", moves_money=False
        )
        problem = refusal(response)
        if problem is not None:
            raise problem
        return Details.of(response)

    def _answer(self, response: Any, *, token_spent_is_unknown: bool = False) -> Answer:
        """The transaction answer; a request refused as a whole raises what it means. A nonce
        refused on a repeat may have been spent by the first send, whose outcome is then unknown."""
        answer = Answer.of(response)
        if answer.code:
            return answer
        problem = refusal(response)
        if problem is None:
            raise GatewayResponseLost(
                "Authorize.Net answered without a transaction.", code="gateway_no_transaction"
            )
        if problem.code == "resource_missing" and token_spent_is_unknown:
            raise GatewayResponseLost(
                "The nonce was refused on a repeat: the first send may have used it.",
                code="gateway_nonce_spent",
            )
        if problem.code == "resource_missing":  # an unknown or expired nonce, a profile that is gone
            return Answer(
                code=codes.ERROR, reason=answer.reason, message=str(problem), trans_id="", raw=answer.raw
            )
        raise problem

    def _currency(self, details: Details) -> str:
        """The currency of a transaction Paydesk sent (Authorize.Net's details do not say it)."""
        found = (
            AuthorizeNetSubmission.objects.filter(reference=details.invoice_number).first()
            if details.invoice_number
            else None
        ) or AuthorizeNetSubmission.objects.filter(trans_id=details.trans_id).first()
        if found is None:
            raise GatewayError(
                f"Authorize.Net transaction {details.trans_id} was not sent by Paydesk.",
                code="gateway_unknown_transaction",
            )
        return found.currency


def _unexpected(
    details: Details, *, currency: str, wanted: str, code: str = "payment_intent_unexpected_state"
) -> GatewayResult:
    """A step the transaction's state does not allow: a failed result, nothing sent."""
    return GatewayResult(
        status="failed",
        reference=details.trans_id,
        amount=details.amount(currency),
        currency=currency,
        failure_code=code,
        failure_message=f"The transaction is {details.status}; it cannot be {wanted}.",
        raw=details.raw,
    )
