"""The gateway step of a payment and its settlement; retries with backoff and dead letters.

See the package docstring (`apps.payments.services`) for the three steps and what follows a failure.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.actors import Actor
from apps.core.dead_letters import dead_letter_record
from apps.core.deferred import backoff_delay, enqueue
from apps.gateways import GatewayError, GatewayResponseLost, GatewayResult, PaymentGateway
from apps.gateways.calls import GatewayExchange, Outcome, gateway_call
from apps.payments import risk
from apps.payments.locks import lock_payment
from apps.payments.models import Payment, Refund
from apps.payments.services.booking import begin_operation, capture_card_payment, open_review, payment_move

logger = logging.getLogger(__name__)

S = Payment.Status
Op = Payment.Operation


def operation_key(payment: Payment, operation: str) -> str:
    """The gateway idempotency key of a step: the same step of the same payment is the same call."""
    return payment.pk if operation == Op.AUTHORIZE else f"{payment.pk}:{operation}"


def run_pending_operation(*, actor: Actor, payment_id: str, payment: Payment | None = None) -> Payment:
    """Performs the payment's pending gateway step (outside any transaction) and settles it.

    Follows on with a capture when an automatic payment came back only authorized. Returns the
    payment as stored afterwards (a retry run inline, with eager tasks, may have moved it on).
    `payment`: the row as the caller has just committed it, which spares reading it again.
    """
    payment = payment if payment is not None else Payment.objects.get(pk=payment_id)
    for _ in range(2):
        operation = payment.pending_operation
        if payment.status not in (S.PENDING, S.PROCESSING) or not operation:
            return payment
        exchange = _call_gateway(payment, operation)
        try:
            payment, follow_up = payment_settle_operation(
                actor=actor, payment_id=payment_id, operation=operation, exchange=exchange
            )
        except Exception:
            # The gateway answered but the answer could not be written: never guess, reconcile (and
            # keep the trail of the call, which rolled back with the settlement).
            logger.exception("payment %s: could not record the gateway's answer to %s", payment_id, operation)
            exchange.record_alone()
            payment_mark_reconcile(actor=None, payment_id=payment_id, reason="settle_failed")
            return Payment.objects.get(pk=payment_id)
        if payment.status == S.PROCESSING and not follow_up:
            payment.refresh_from_db()
        if not follow_up:
            return payment
    return payment


def _call_gateway(payment: Payment, operation: str) -> GatewayExchange:
    """The step's gateway call through `gateway_call` (circuit breaker, timing, metric); the
    settlement records it."""
    key = operation_key(payment, operation)

    def call(gateway: PaymentGateway) -> GatewayResult:
        if operation == Op.AUTHORIZE:
            capture = payment.capture_method == Payment.CaptureMethod.AUTOMATIC and not payment.risk_reasons
            return gateway.authorize(
                amount=payment.amount,
                currency=payment.currency,
                token=payment.payment_method_token,
                idempotency_key=key,
                capture=capture,
            )
        if operation == Op.CAPTURE:
            return gateway.capture(
                reference=payment.gateway_reference, amount=payment.operation_amount, idempotency_key=key
            )
        return gateway.void(reference=payment.gateway_reference, idempotency_key=key)

    return gateway_call(subject=payment, operation=operation, idempotency_key=key, call=call)


@transaction.atomic(durable=True)
def payment_settle_operation(
    *, actor: Actor, payment_id: str, operation: str, exchange: GatewayExchange
) -> tuple[Payment, bool]:
    """Applies one gateway answer to the locked payment; returns (payment, run a follow-up step).

    The call's attempt and raw-log event are recorded in this same transaction.

    A payment no longer waiting for this step (settled by a retry or reconciliation that got there
    first) is returned unchanged: settling twice can't move money twice.
    """
    payment = lock_payment(payment_id)
    exchange.record()
    # Only a retrieve answers "nothing": a step that did is unknown, never guessed.
    outcome: Outcome = exchange.outcome or GatewayResponseLost(code="gateway_no_answer")
    if payment.pending_operation != operation or payment.status not in (S.PENDING, S.PROCESSING):
        return payment, False
    if isinstance(outcome, GatewayResponseLost) or (
        isinstance(outcome, GatewayError) and outcome.code == "gateway_idempotency_conflict"
    ):
        # The outcome is unknown: only the gateway can say what happened.
        _move_to_reconcile(actor=actor, payment=payment, reason=outcome.code)
        return payment, False
    if isinstance(outcome, GatewayError):
        # Retryable, or a gateway error retrying may not fix (misconfiguration): either way the
        # retries end in a dead letter someone looks at, never in a guess.
        return _schedule_retry(actor=actor, payment=payment, error=outcome), False
    return _apply_result(actor=actor, payment=payment, operation=operation, result=outcome)


def _apply_result(
    *, actor: Actor, payment: Payment, operation: str, result: GatewayResult
) -> tuple[Payment, bool]:
    if result.reference and not payment.gateway_reference:
        payment.gateway_reference = result.reference[:255]
    if result.card_brand:
        payment.card_brand, payment.card_last4 = result.card_brand[:20], result.card_last4[:4]
    if result.status == "failed":
        message = result.failure_message or "The payment was declined."
        payment_move(
            actor=actor,
            payment=payment,
            to=S.FAILED,
            action=operation,
            event="payment.failed",
            failure=(result.failure_code or "gateway_declined", message),
        )
        return payment, False
    if result.status == "captured":
        captured = payment.operation_amount if operation == Op.CAPTURE else (result.amount or payment.amount)
        capture_card_payment(actor=actor, payment=payment, amount=captured, action="capture")
        return payment, False
    if result.status == "voided":
        payment_move(actor=actor, payment=payment, to=S.CANCELED, action="cancel", event="payment.canceled")
        return payment, False
    # authorized: held for review, waiting for a manual capture, or to be captured right away.
    reasons = list(payment.risk_reasons)
    if result.risk_level == "elevated" and risk.GATEWAY_ELEVATED not in reasons:
        reasons.append(risk.GATEWAY_ELEVATED)
    if reasons:
        open_review(actor=actor, payment=payment, reasons=reasons)
        return payment, False
    if payment.capture_method == Payment.CaptureMethod.MANUAL:
        payment_move(
            actor=actor,
            payment=payment,
            to=S.REQUIRES_CAPTURE,
            action="authorize",
            event="payment.requires_capture",
        )
        return payment, False
    begin_operation(payment, Op.CAPTURE, payment.amount)
    payment_move(actor=actor, payment=payment, to=S.PROCESSING, action="capture")
    return payment, True


def _schedule_retry(*, actor: Actor, payment: Payment, error: GatewayError) -> Payment:
    payment.attempts += 1
    operation = payment.pending_operation
    payload = {"payment": payment.pk, "operation": operation}
    if dead_letter_if_exhausted(
        payment, error, kind="payment_operation", operation=operation, payload=payload
    ):
        payment_move(
            actor=actor,
            payment=payment,
            to=S.FAILED,
            action=payment.pending_operation or "retry",
            event="payment.failed",
            failure=("gateway_unavailable", "The payment gateway was unavailable; nothing was captured."),
        )
        return payment
    delay = retry_delay(payment.attempts)
    payment.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    payment_move(actor=actor, payment=payment, to=S.PROCESSING, action="retry")
    payment_id = payment.pk
    from apps.payments import tasks  # the tasks call these services

    # A broker that is down leaves the payment `processing`; reconcile_payments (also periodic)
    # picks up what no retry is coming for.
    transaction.on_commit(
        lambda: enqueue(tasks.retry_payment_operation, payment_id, countdown=delay, fallback="reconciliation")
    )
    return payment


def dead_letter_if_exhausted(
    record: Payment | Refund, error: Exception, *, kind: str, operation: str, payload: dict[str, Any]
) -> bool:
    """True once `record` has used its last attempt, its work dead-lettered: from there a person
    decides what happened, never another retry."""
    if record.attempts < settings.PAYMENT_RETRY_MAX_ATTEMPTS:
        return False
    dead_letter_record(
        kind=kind,
        reference=record.pk,
        reason=f"{operation} failed {record.attempts} times: {getattr(error, 'code', 'gateway_error')}",
        payload={**payload, "last_error": str(error)},
        attempts=record.attempts,
    )
    return True


def retry_delay(attempt: int) -> float:
    """Seconds before a payment's or refund's retry number `attempt`: the core backoff (full jitter)
    with the payment settings."""
    return backoff_delay(
        attempt=attempt,
        base=settings.PAYMENT_RETRY_BASE_SECONDS,
        maximum=settings.PAYMENT_RETRY_MAX_SECONDS,
    )


@transaction.atomic(durable=True)
def payment_mark_reconcile(*, actor: Actor, payment_id: str, reason: str) -> Payment | None:
    """Puts a payment whose outcome we don't know into `reconcile` (no-op if it moved on)."""
    payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
    if payment is None or payment.status not in (S.PENDING, S.PROCESSING):
        return payment
    _move_to_reconcile(actor=actor, payment=payment, reason=reason)
    return payment


def _move_to_reconcile(*, actor: Actor, payment: Payment, reason: str) -> None:
    """Into `reconcile`, announced (`payment.reconcile`): its outcome is the gateway's to tell."""
    payment_move(
        actor=actor,
        payment=payment,
        to=S.RECONCILE,
        action="reconcile",
        event="payment.reconcile",
        failure=(reason, ""),
    )
