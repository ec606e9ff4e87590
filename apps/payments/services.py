"""Every write to payments: create, capture, cancel, refund, review decisions, retries, reconcile.

A payment moves in steps that each own one durable transaction, with the network in between:

    1. open    (transaction): lock/check, write the payment `pending` with the operation to do
    2. gateway (no transaction, no row locks): authorize / capture / void with an idempotency key
               derived from the payment, so any repeat of the call is the same call at the gateway
    3. settle  (transaction): lock the payment, apply the gateway's answer through the state
               machine, with its ledger entry, audit row and outbox event

If step 3 can't be written, the payment is put in `reconcile` (or, if even that fails, it stays
`pending`/`processing` and `reconcile_payments` moves it there); reconciliation asks the gateway
what happened and settles it. A retryable gateway failure leaves the payment `processing` and a
Celery task repeats step 2–3 with exponential backoff and jitter; after the last attempt the work
is dead-lettered and the payment fails with `gateway_unavailable`.

Wallet payments need no gateway: they are opened and settled in one transaction. An uncaptured
wallet payment holds its funds in the `wallet_holds` system account.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.rawlog import raw_log_gateway_exchange
from apps.audit.services import audit_record
from apps.core import metrics
from apps.core.dead_letters import dead_letter_record
from apps.core.outbox import emit_event
from apps.gateways import get_gateway
from apps.gateways.base import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayRetryableError,
)
from apps.gateways.models import GatewayAttempt
from apps.ledger.models import SystemAccount
from apps.ledger.services import ledger_post, ledger_system_account
from apps.payments import cache as payment_cache
from apps.payments import risk
from apps.payments.errors import (
    CaptureExceedsAuthorized,
    InvalidPaymentMethod,
    NoteRequired,
    PaymentNotFound,
    PaymentUnexpectedState,
    RefundExceedsCaptured,
    ReviewClosed,
    ReviewPermissionRequired,
)
from apps.payments.models import Payment, Refund, Review
from apps.payments.states import transition
from apps.wallets.errors import CurrencyMismatch, WalletNotFound
from apps.wallets.locks import lock_wallets
from apps.wallets.services import wallet_post_locked

logger = logging.getLogger(__name__)

S = Payment.Status
Op = Payment.Operation
REVIEW_PERMISSION = "payments.review_payment"
# What `parse_payment_method` accepts; the API documents the same shapes from these.
TOKEN_PATTERN = re.compile(r"^(tok|pm|card|src)_[A-Za-z0-9_]{1,200}$")
WALLET_PATTERN = re.compile(r"^wallet:(wal_[0-9A-Z]{26})$")


# --- payment methods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentMethod:
    type: str  # Payment.MethodType
    token: str = ""
    wallet_id: str = ""


def parse_payment_method(value: str) -> PaymentMethod:
    """A gateway token (`tok_…`, `pm_…`) or `wallet:<wallet id>`; anything else is a 400."""
    if not isinstance(value, str):
        raise InvalidPaymentMethod(param="payment_method")
    if match := WALLET_PATTERN.match(value):
        return PaymentMethod(type=Payment.MethodType.WALLET, wallet_id=match.group(1))
    if TOKEN_PATTERN.match(value):
        return PaymentMethod(type=Payment.MethodType.CARD, token=value)
    raise InvalidPaymentMethod(param="payment_method")


# --- create -------------------------------------------------------------------------------------


def payment_create(
    *,
    actor: Any,
    owner: Any,
    amount: int,
    currency: str,
    payment_method: str,
    capture_method: str = Payment.CaptureMethod.AUTOMATIC,
    description: str = "",
    customer_id: str = "",
    metadata: dict[str, Any] | None = None,
    receipt_email: str = "",
    subscription_id: str = "",
    billing_period: str = "",
) -> Payment:
    """Creates and runs a payment; declines are a `failed` payment, not an error.

    A subscription payment names its `subscription_id` and `billing_period`; the database holds
    one payment per pair, so a second attempt at the same period (billing run twice, two workers
    racing) gets the first one back — and finishes its pending gateway step if it has one, which
    is safe because that step's idempotency key is the payment's own id.
    """
    method = parse_payment_method(payment_method)
    fields = {
        "owner": owner,
        "amount": amount,
        "currency": currency,
        "capture_method": capture_method,
        "description": description or "",
        "customer_id": customer_id or owner.pk,
        "metadata": metadata or {},
        "receipt_email": receipt_email or "",
        "subscription_id": subscription_id or "",
        "billing_period": billing_period if subscription_id else "",
    }
    try:
        if method.type == Payment.MethodType.WALLET:
            return _wallet_payment_create(actor=actor, wallet_id=method.wallet_id, fields=fields)
        payment = _card_payment_open(actor=actor, token=method.token, fields=fields)
    except IntegrityError as exc:
        existing = _existing_period_payment(exc, subscription_id, billing_period)
        if existing is None:
            raise
        payment = existing
    return run_pending_operation(actor=actor, payment_id=payment.pk, payment=payment)


def _existing_period_payment(
    exc: IntegrityError, subscription_id: str, billing_period: str
) -> Payment | None:
    if not subscription_id or "payment_one_per_billing_period" not in str(exc):
        return None
    return Payment.objects.filter(subscription_id=subscription_id, billing_period=billing_period).first()


@transaction.atomic(durable=True)
def _card_payment_open(*, actor: Any, token: str, fields: dict[str, Any]) -> Payment:
    reasons = risk.assess(owner=fields["owner"], customer_id=fields["customer_id"], amount=fields["amount"])
    payment = Payment.objects.create(
        **fields,
        method_type=Payment.MethodType.CARD,
        payment_method_token=token,
        gateway=get_gateway().name,
        status=S.PENDING,
        pending_operation=Op.AUTHORIZE,
        operation_amount=fields["amount"],
        risk_reasons=reasons,
    )
    emit_event(event_type="payment.created", aggregate=payment, payload=payment_payload(payment))
    audit_record(
        actor=actor,
        action="payment.create",
        entity_type="payment",
        entity_id=payment.pk,
        after=_audit_view(payment),
    )
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])
    return payment


@transaction.atomic(durable=True)
def _wallet_payment_create(*, actor: Any, wallet_id: str, fields: dict[str, Any]) -> Payment:
    """Pays from the owner's own wallet in one transaction: debit (or hold), entry, events."""
    owner = fields["owner"]
    wallet = lock_wallets([wallet_id]).get(wallet_id)
    if wallet is None or wallet.user_id != owner.pk:
        raise WalletNotFound(f"No such wallet: '{wallet_id}'", param="payment_method")
    if wallet.currency != fields["currency"]:
        raise CurrencyMismatch(
            f"This wallet holds {wallet.currency}, not {fields['currency']}.", param="currency"
        )
    reasons = risk.assess(owner=owner, customer_id=fields["customer_id"], amount=fields["amount"])
    payment = Payment.objects.create(
        **fields,
        method_type=Payment.MethodType.WALLET,
        wallet=wallet,
        gateway="wallet",
        status=S.PENDING,
        risk_reasons=reasons,
    )
    emit_event(event_type="payment.created", aggregate=payment, payload=payment_payload(payment))
    amount = payment.amount
    if reasons or payment.capture_method == Payment.CaptureMethod.MANUAL:
        holds = ledger_system_account(code=SystemAccount.WALLET_HOLDS, currency=payment.currency)
        wallet_post_locked(
            wallet=wallet,
            kind="payment_hold",
            memo=f"hold for {payment.pk}",
            lines=[(wallet.ledger_account, -amount), (holds, amount)],
        )
        if reasons:
            _open_review(actor=actor, payment=payment, reasons=reasons)
        else:
            _move(actor=actor, payment=payment, to=S.REQUIRES_CAPTURE, action="authorize")
    else:
        revenue = ledger_system_account(code=SystemAccount.PLATFORM_REVENUE, currency=payment.currency)
        wallet_post_locked(
            wallet=wallet,
            kind="payment_capture",
            memo=f"payment {payment.pk}",
            lines=[(wallet.ledger_account, -amount), (revenue, amount)],
        )
        payment.amount_captured = amount
        _move(actor=actor, payment=payment, to=S.SUCCEEDED, action="capture", event="payment.succeeded")
    payment_cache.bump_on_commit(owner_ids=[owner.pk])
    return payment


# --- the gateway step and its settlement ---------------------------------------------------------


def operation_key(payment: Payment, operation: str) -> str:
    """The gateway idempotency key of a step: the same step of the same payment is the same call."""
    return payment.pk if operation == Op.AUTHORIZE else f"{payment.pk}:{operation}"


def run_pending_operation(*, actor: Any, payment_id: str, payment: Payment | None = None) -> Payment:
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
        outcome, latency_ms = _call_gateway(payment, operation)
        try:
            payment, follow_up = payment_settle_operation(
                actor=actor,
                payment_id=payment_id,
                operation=operation,
                outcome=outcome,
                latency_ms=latency_ms,
            )
        except Exception:
            # The gateway answered but the answer could not be written: never guess, reconcile.
            logger.exception("payment %s: could not record the gateway's answer to %s", payment_id, operation)
            payment_mark_reconcile(actor=None, payment_id=payment_id, reason="settle_failed")
            return Payment.objects.get(pk=payment_id)
        if payment.status == S.PROCESSING and not follow_up:
            payment.refresh_from_db()
        if not follow_up:
            return payment
    return payment


def _call_gateway(payment: Payment, operation: str) -> tuple[GatewayResult | Exception, int]:
    gateway = get_gateway(payment.gateway)
    key = operation_key(payment, operation)
    started = time.monotonic()
    try:
        if operation == Op.AUTHORIZE:
            capture = payment.capture_method == Payment.CaptureMethod.AUTOMATIC and not payment.risk_reasons
            outcome: GatewayResult | Exception = gateway.authorize(
                amount=payment.amount,
                currency=payment.currency,
                token=payment.payment_method_token,
                idempotency_key=key,
                capture=capture,
            )
        elif operation == Op.CAPTURE:
            outcome = gateway.capture(
                reference=payment.gateway_reference, amount=payment.operation_amount, idempotency_key=key
            )
        else:
            outcome = gateway.void(reference=payment.gateway_reference, idempotency_key=key)
    except GatewayError as exc:
        outcome = exc
    metrics.observe_gateway(gateway=payment.gateway, operation=operation, outcome=outcome, started=started)
    return outcome, int((time.monotonic() - started) * 1000)


@transaction.atomic(durable=True)
def payment_settle_operation(
    *, actor: Any, payment_id: str, operation: str, outcome: GatewayResult | Exception, latency_ms: int = 0
) -> tuple[Payment, bool]:
    """Applies one gateway answer to the locked payment; returns (payment, run a follow-up step).

    A payment no longer waiting for this step (settled by a retry or reconciliation that got there
    first) is returned unchanged: settling twice can't move money twice.
    """
    payment = _lock(payment_id)
    _record_attempt(payment, operation, outcome, latency_ms)
    if payment.pending_operation != operation or payment.status not in (S.PENDING, S.PROCESSING):
        return payment, False
    if isinstance(outcome, GatewayResponseLost) or (
        isinstance(outcome, GatewayError) and outcome.code == "gateway_idempotency_conflict"
    ):
        # The outcome is unknown: only the gateway can say what happened.
        _move(actor=actor, payment=payment, to=S.RECONCILE, action="reconcile", failure=(outcome.code, ""))
        return payment, False
    if isinstance(outcome, GatewayError):
        # Retryable, or a gateway error retrying may not fix (misconfiguration): either way the
        # retries end in a dead letter someone looks at, never in a guess.
        return _schedule_retry(actor=actor, payment=payment, error=outcome), False
    return _apply_result(actor=actor, payment=payment, operation=operation, result=outcome)


def _apply_result(
    *, actor: Any, payment: Payment, operation: str, result: GatewayResult
) -> tuple[Payment, bool]:
    if result.reference and not payment.gateway_reference:
        payment.gateway_reference = result.reference[:255]
    if result.card_brand:
        payment.card_brand, payment.card_last4 = result.card_brand[:20], result.card_last4[:4]
    if result.status == "failed":
        message = result.failure_message or "The payment was declined."
        _move(
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
        _capture_card_money(payment, captured)
        _move(actor=actor, payment=payment, to=S.SUCCEEDED, action="capture", event="payment.succeeded")
        return payment, False
    if result.status == "voided":
        _move(actor=actor, payment=payment, to=S.CANCELED, action="cancel", event="payment.canceled")
        return payment, False
    # authorized: held for review, waiting for a manual capture, or to be captured right away.
    reasons = list(payment.risk_reasons)
    if result.risk_level == "elevated" and risk.GATEWAY_ELEVATED not in reasons:
        reasons.append(risk.GATEWAY_ELEVATED)
    if reasons:
        _open_review(actor=actor, payment=payment, reasons=reasons)
        return payment, False
    if payment.capture_method == Payment.CaptureMethod.MANUAL:
        _move(actor=actor, payment=payment, to=S.REQUIRES_CAPTURE, action="authorize")
        return payment, False
    _begin(payment, Op.CAPTURE, payment.amount)
    _move(actor=actor, payment=payment, to=S.PROCESSING, action="capture")
    return payment, True


def _capture_card_money(payment: Payment, amount: int) -> None:
    """Captured card money: the gateway's clearing account owes it to the platform's revenue."""
    clearing = ledger_system_account(code=SystemAccount.GATEWAY_CLEARING, currency=payment.currency)
    revenue = ledger_system_account(code=SystemAccount.PLATFORM_REVENUE, currency=payment.currency)
    ledger_post(
        kind="payment_capture", memo=f"payment {payment.pk}", lines=[(clearing, -amount), (revenue, amount)]
    )
    payment.amount_captured = amount


def _schedule_retry(*, actor: Any, payment: Payment, error: GatewayError) -> Payment:
    payment.attempts += 1
    operation = payment.pending_operation
    payload = {"payment": payment.pk, "operation": operation}
    if _dead_letter_if_exhausted(
        payment, error, kind="payment_operation", operation=operation, payload=payload
    ):
        _move(
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
    _move(actor=actor, payment=payment, to=S.PROCESSING, action="retry")
    payment_id = payment.pk
    transaction.on_commit(lambda: _enqueue("retry_payment_operation", payment_id, delay))
    return payment


def _dead_letter_if_exhausted(
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
    """Exponential backoff with full jitter: up to base·2^(attempt-1) seconds, capped."""
    ceiling = min(
        settings.PAYMENT_RETRY_BASE_SECONDS * 2 ** (attempt - 1), settings.PAYMENT_RETRY_MAX_SECONDS
    )
    # bandit B311: backoff jitter, not a secret
    return round(random.uniform(ceiling / 2, ceiling), 3)  # nosec B311


def _enqueue(task_name: str, object_id: str, delay: float) -> None:
    from apps.payments import tasks

    try:
        getattr(tasks, task_name).apply_async(args=[object_id], countdown=delay)
    except Exception:
        # The broker is down: the payment (or refund) keeps its state, and reconcile_payments
        # (also periodic) picks up what no retry is coming for.
        logger.warning(
            "%s(%s) not queued; reconciliation will pick it up", task_name, object_id, exc_info=True
        )


# --- capture, cancel ----------------------------------------------------------------------------


def payment_capture(*, actor: Any, owner: Any, payment_id: str, amount: int | None = None) -> Payment:
    payment = _payment_begin_capture(actor=actor, owner=owner, payment_id=payment_id, amount=amount)
    return run_pending_operation(actor=actor, payment_id=payment.pk, payment=payment)


@transaction.atomic(durable=True)
def _payment_begin_capture(*, actor: Any, owner: Any, payment_id: str, amount: int | None) -> Payment:
    payment = _lock(payment_id, owner=owner)
    if payment.status != S.REQUIRES_CAPTURE:
        raise PaymentUnexpectedState(f"Cannot capture a payment whose status is '{payment.status}'.")
    amount = payment.amount if amount is None else amount
    if amount > payment.amount:
        raise CaptureExceedsAuthorized(
            f"amount {amount} exceeds the authorized {payment.amount}.", param="amount"
        )
    if payment.method_type == Payment.MethodType.WALLET:
        _capture_wallet_hold(actor=actor, payment=payment, amount=amount)
        return payment
    _begin(payment, Op.CAPTURE, amount)
    _move(actor=actor, payment=payment, to=S.PROCESSING, action="capture")
    return payment


def payment_cancel(*, actor: Any, owner: Any, payment_id: str, reason: str = "") -> Payment:
    payment = _payment_begin_cancel(actor=actor, owner=owner, payment_id=payment_id, reason=reason)
    return run_pending_operation(actor=actor, payment_id=payment.pk, payment=payment)


@transaction.atomic(durable=True)
def _payment_begin_cancel(*, actor: Any, owner: Any, payment_id: str, reason: str) -> Payment:
    payment = _lock(payment_id, owner=owner)
    if payment.status != S.REQUIRES_CAPTURE:
        raise PaymentUnexpectedState(f"Cannot cancel a payment whose status is '{payment.status}'.")
    if reason:
        payment.metadata = {**payment.metadata, "cancellation_reason": reason[:500]}
    if payment.method_type == Payment.MethodType.WALLET:
        _release_wallet_hold(actor=actor, payment=payment)
        return payment
    _begin(payment, Op.VOID, 0)
    _move(actor=actor, payment=payment, to=S.PROCESSING, action="cancel")
    return payment


def _capture_wallet_hold(*, actor: Any, payment: Payment, amount: int) -> None:
    """Takes `amount` of the held funds as revenue and gives the rest back to the wallet."""
    wallet = lock_wallets([payment.wallet_id])[payment.wallet_id]
    holds = ledger_system_account(code=SystemAccount.WALLET_HOLDS, currency=payment.currency)
    revenue = ledger_system_account(code=SystemAccount.PLATFORM_REVENUE, currency=payment.currency)
    lines = [(holds, -payment.amount), (revenue, amount)]
    if payment.amount > amount:
        lines.append((wallet.ledger_account, payment.amount - amount))
    wallet_post_locked(wallet=wallet, kind="payment_capture", memo=f"payment {payment.pk}", lines=lines)
    payment.amount_captured = amount
    _move(actor=actor, payment=payment, to=S.SUCCEEDED, action="capture", event="payment.succeeded")


def _release_wallet_hold(*, actor: Any, payment: Payment) -> None:
    wallet = lock_wallets([payment.wallet_id])[payment.wallet_id]
    holds = ledger_system_account(code=SystemAccount.WALLET_HOLDS, currency=payment.currency)
    wallet_post_locked(
        wallet=wallet,
        kind="payment_release",
        memo=f"release {payment.pk}",
        lines=[(holds, -payment.amount), (wallet.ledger_account, payment.amount)],
    )
    _move(actor=actor, payment=payment, to=S.CANCELED, action="cancel", event="payment.canceled")


# --- refunds ------------------------------------------------------------------------------------


def payment_refund(
    *, actor: Any, owner: Any, payment_id: str, amount: int | None = None, reason: str = ""
) -> Refund:
    refund = _refund_open(actor=actor, owner=owner, payment_id=payment_id, amount=amount, reason=reason)
    if refund.status != Refund.Status.PENDING:
        return refund
    return run_refund(actor=actor, refund_id=refund.pk)


@transaction.atomic(durable=True)
def _refund_open(*, actor: Any, owner: Any, payment_id: str, amount: int | None, reason: str) -> Refund:
    payment = _lock(payment_id, owner=owner)
    if payment.status != S.SUCCEEDED:
        raise PaymentUnexpectedState(f"Cannot refund a payment whose status is '{payment.status}'.")
    in_flight = sum(payment.refunds.filter(status=Refund.Status.PENDING).values_list("amount", flat=True))
    refundable = payment.amount_captured - payment.amount_refunded - in_flight
    amount = refundable if amount is None else amount
    if amount > refundable or amount <= 0:
        raise RefundExceedsCaptured(
            f"amount {amount} exceeds the {refundable} that can still be refunded.", param="amount"
        )
    refund = Refund.objects.create(payment=payment, amount=amount, reason=reason[:500])
    if payment.method_type == Payment.MethodType.WALLET:
        _complete_refund(actor=actor, payment=payment, refund=refund)
    # The audit chain's lock is taken last, after every row lock (see audit_record).
    audit_record(
        actor=actor,
        action="refund.create",
        entity_type="refund",
        entity_id=refund.pk,
        after={"payment": payment.pk, "amount": amount, "status": refund.status},
    )
    return refund


def run_refund(*, actor: Any, refund_id: str) -> Refund:
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    payment = refund.payment
    gateway = get_gateway(payment.gateway)
    started = time.monotonic()
    try:
        outcome: GatewayResult | Exception = gateway.refund(
            reference=payment.gateway_reference, amount=refund.amount, idempotency_key=refund.pk
        )
    except GatewayError as exc:
        # A refund carries its own idempotency key, so repeating it is always safe: a lost answer
        # is simply retried.
        outcome = exc
    return refund_settle(
        actor=actor, refund_id=refund_id, outcome=outcome, latency_ms=int((time.monotonic() - started) * 1000)
    )


@transaction.atomic(durable=True)
def refund_settle(
    *, actor: Any, refund_id: str, outcome: GatewayResult | Exception, latency_ms: int = 0
) -> Refund:
    payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
    payment = _lock(payment_id)
    refund = Refund.objects.select_for_update().get(pk=refund_id)
    _record_attempt(payment, "refund", outcome, latency_ms, key=refund.pk)
    if refund.status != Refund.Status.PENDING:
        return refund
    if isinstance(outcome, Exception):
        refund.attempts += 1
        payload = {"refund": refund.pk, "payment": payment.pk}
        if _dead_letter_if_exhausted(refund, outcome, kind="refund", operation="refund", payload=payload):
            _fail_refund(actor=actor, refund=refund, code="gateway_unavailable")
            return refund
        refund.save(update_fields=["attempts", "updated_at"])
        delay = retry_delay(refund.attempts)
        transaction.on_commit(lambda: _enqueue("retry_refund", refund_id, delay))
        return refund
    if outcome.status == "failed":
        _fail_refund(actor=actor, refund=refund, code=outcome.failure_code or "refund_failed")
        return refund
    refund.gateway_reference = outcome.reference[:255]
    _complete_refund(actor=actor, payment=payment, refund=refund)
    return refund


def _complete_refund(*, actor: Any, payment: Payment, refund: Refund) -> None:
    revenue = ledger_system_account(code=SystemAccount.PLATFORM_REVENUE, currency=payment.currency)
    if payment.method_type == Payment.MethodType.WALLET:
        # Money going back to its owner is received even by a frozen wallet: freezing stops money
        # leaving, and a refund has nowhere else to go.
        wallet = lock_wallets([payment.wallet_id])[payment.wallet_id]
        wallet_post_locked(
            wallet=wallet,
            kind="refund",
            memo=f"refund {refund.pk}",
            lines=[(revenue, -refund.amount), (wallet.ledger_account, refund.amount)],
            allow_frozen=True,
        )
    else:
        clearing = ledger_system_account(code=SystemAccount.GATEWAY_CLEARING, currency=payment.currency)
        ledger_post(
            kind="refund",
            memo=f"refund {refund.pk}",
            lines=[(revenue, -refund.amount), (clearing, refund.amount)],
        )
    refund.status = Refund.Status.SUCCEEDED
    refund.save(update_fields=["status", "gateway_reference", "updated_at"])
    payment.amount_refunded += refund.amount
    target = S.REFUNDED if payment.amount_refunded == payment.amount_captured else S.SUCCEEDED
    _move(
        actor=actor,
        payment=payment,
        to=target,
        action="refund",
        event="payment.refunded",
        extra={"refund": refund.pk, "refund_amount": refund.amount},
    )


def _fail_refund(*, actor: Any, refund: Refund, code: str) -> None:
    refund.status = Refund.Status.FAILED
    refund.failure_code = code[:64]
    refund.save(update_fields=["status", "failure_code", "attempts", "updated_at"])
    audit_record(
        actor=actor,
        action="refund.fail",
        entity_type="refund",
        entity_id=refund.pk,
        before={"status": Refund.Status.PENDING},
        after={"status": refund.status, "failure_code": refund.failure_code},
    )


# --- review -------------------------------------------------------------------------------------


def review_decide(*, actor: Any, payment_id: str, decision: str, note: str) -> Payment:
    """Approve (capture) or deny (void) a payment held for review. Exactly one decision wins.

    The decision is taken and committed under the payment's row lock (so of two reviewers racing,
    the second sees `review_closed`); the capture or void then runs at the gateway like any other
    step, and a gateway failure leaves it to the usual retries, never undoing the decision.
    """
    if not (actor is not None and actor.has_perm(REVIEW_PERMISSION)):
        raise ReviewPermissionRequired()
    note = (note or "").strip()
    if not note:
        raise NoteRequired("A note is required to decide a review.", param="note")
    payment = _review_decide(actor=actor, payment_id=payment_id, decision=decision, note=note)
    return run_pending_operation(actor=actor, payment_id=payment.pk, payment=payment)


@transaction.atomic(durable=True)
def _review_decide(*, actor: Any, payment_id: str, decision: str, note: str) -> Payment:
    payment = _lock(payment_id)
    review = Review.objects.select_for_update().filter(payment=payment).first()
    if review is None:
        raise ReviewClosed("This payment is not held for review.")
    if review.status != Review.Status.OPEN or payment.status != S.IN_REVIEW:
        raise ReviewClosed(
            f"This review was already {review.status} by {review.decided_by or 'someone'}.",
            details={"status": review.status},
        )
    approve = decision == "approve"
    review.status = Review.Status.APPROVED if approve else Review.Status.DENIED
    review.decided_by = actor
    review.decided_at = timezone.now()
    review.note = note[:2000]
    review.save(update_fields=["status", "decided_by", "decided_at", "note"])
    emit_event(
        event_type="payment.review_decided",
        aggregate=payment,
        payload={**payment_payload(payment), "decision": review.status, "decided_by": actor.pk},
    )
    # Wallet rows are locked before the audit chain's lock (taken by audit_record), never after:
    # a transfer holding the wallet and waiting for the chain would otherwise deadlock with us.
    if payment.method_type == Payment.MethodType.WALLET:
        if approve:
            _capture_wallet_hold(actor=actor, payment=payment, amount=payment.amount)
        else:
            _release_wallet_hold(actor=actor, payment=payment)
    else:
        _begin(payment, Op.CAPTURE if approve else Op.VOID, payment.amount if approve else 0)
        _move(actor=actor, payment=payment, to=S.PROCESSING, action="approve" if approve else "deny")
    audit_record(
        actor=actor,
        action=f"review.{decision}",
        entity_type="payment",
        entity_id=payment.pk,
        before={"review": Review.Status.OPEN},
        after={"review": review.status, "note": review.note},
    )
    return payment


def _open_review(*, actor: Any, payment: Payment, reasons: list[str]) -> None:
    Review.objects.create(payment=payment, reasons=reasons)
    payment.risk_reasons = reasons
    _move(actor=actor, payment=payment, to=S.IN_REVIEW, action="hold", event="payment.review_opened")


# --- reconciliation -----------------------------------------------------------------------------


@transaction.atomic(durable=True)
def payment_mark_reconcile(*, actor: Any, payment_id: str, reason: str) -> Payment | None:
    """Puts a payment whose outcome we don't know into `reconcile` (no-op if it moved on)."""
    payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
    if payment is None or payment.status not in (S.PENDING, S.PROCESSING):
        return payment
    _move(actor=actor, payment=payment, to=S.RECONCILE, action="reconcile", failure=(reason, ""))
    return payment


def payment_reconcile(*, actor: Any, payment_id: str) -> tuple[str, str]:
    """Asks the gateway what happened to the payment and settles it. Returns (before, after)."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != S.RECONCILE:
        return payment.status, payment.status
    known = get_gateway(payment.gateway).retrieve(idempotency_key=operation_key(payment, Op.AUTHORIZE))
    settled = _reconcile_settle(actor=actor, payment_id=payment_id, known=known)
    if settled.status == S.PROCESSING:  # authorized, and an automatic payment still needs its capture
        settled = run_pending_operation(actor=actor, payment_id=payment_id)
    return S.RECONCILE, settled.status


@transaction.atomic(durable=True)
def _reconcile_settle(*, actor: Any, payment_id: str, known: GatewayResult | None) -> Payment:
    payment = _lock(payment_id)
    if payment.status != S.RECONCILE:
        return payment
    _record_attempt(payment, "retrieve", known or GatewayResult(status="failed", failure_code="not_found"), 0)
    if known is None:
        if payment.gateway == "stripe" and payment.created_at > timezone.now() - timedelta(
            seconds=settings.STRIPE_SEARCH_GRACE_SECONDS
        ):
            # Stripe's search index lags creation by up to a minute: not found yet is not "never".
            return payment
        _move(
            actor=actor,
            payment=payment,
            to=S.FAILED,
            action="reconcile",
            event="payment.failed",
            failure=("gateway_no_charge", "The gateway never received this payment; nothing was charged."),
        )
        return payment
    if known.reference and not payment.gateway_reference:
        payment.gateway_reference = known.reference[:255]
    if known.status == "captured" or known.status == "refunded":
        _capture_card_money(payment, known.amount or payment.amount)
        _move(actor=actor, payment=payment, to=S.SUCCEEDED, action="reconcile", event="payment.succeeded")
    elif known.status == "voided":
        _move(actor=actor, payment=payment, to=S.CANCELED, action="reconcile", event="payment.canceled")
    elif known.status == "failed":
        _move(
            actor=actor,
            payment=payment,
            to=S.FAILED,
            action="reconcile",
            event="payment.failed",
            failure=(
                known.failure_code or "gateway_declined",
                known.failure_message or "The payment was declined.",
            ),
        )
    elif payment.risk_reasons or known.risk_level == "elevated":
        reasons = list(payment.risk_reasons) or [risk.GATEWAY_ELEVATED]
        _open_review(actor=actor, payment=payment, reasons=reasons)
    elif payment.capture_method == Payment.CaptureMethod.MANUAL:
        _move(actor=actor, payment=payment, to=S.REQUIRES_CAPTURE, action="reconcile")
    else:
        # Not allowed by the state machine from reconcile, so go through requires_capture: the
        # capture then runs as an ordinary step.
        _move(actor=actor, payment=payment, to=S.REQUIRES_CAPTURE, action="reconcile")
        _begin(payment, Op.CAPTURE, payment.amount)
        _move(actor=actor, payment=payment, to=S.PROCESSING, action="capture")
    return payment


def payments_stuck(*, older_than: timedelta) -> list[str]:
    """Payments left `pending`/`processing` with no step under way and no retry to come.

    A step in a request takes seconds; a retry is due at `next_attempt_at`. Past either by the
    grace period (PAYMENT_STUCK_AFTER_SECONDS, and at least `older_than`), nobody is coming back for
    the payment (a crashed process, a retry lost with the broker), so it goes to reconciliation.
    """
    now = timezone.now()
    cutoff = now - max(older_than, timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS))
    no_retry_due = Q(next_attempt_at__isnull=True, updated_at__lte=cutoff) | Q(next_attempt_at__lte=cutoff)
    return list(
        Payment.objects.filter(no_retry_due, status__in=[S.PENDING, S.PROCESSING]).values_list(
            "pk", flat=True
        )
    )


def refunds_stuck(*, older_than: timedelta) -> list[str]:
    """Refunds still pending past the grace period: their retry was lost (a broker outage, a crash).

    Running them again is safe: a refund's gateway call carries the refund's id as its key.
    """
    cutoff = timezone.now() - max(older_than, timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS))
    return list(
        Refund.objects.filter(status=Refund.Status.PENDING, updated_at__lte=cutoff).values_list(
            "pk", flat=True
        )
    )


def payments_to_reconcile(*, older_than: timedelta) -> list[str]:
    return list(
        Payment.objects.filter(status=S.RECONCILE, updated_at__lte=timezone.now() - older_than)
        .order_by("updated_at")
        .values_list("pk", flat=True)
    )


# --- shared steps -------------------------------------------------------------------------------


def _lock(payment_id: str, *, owner: Any = None) -> Payment:
    queryset = Payment.objects.select_for_update(of=("self",))
    if owner is not None:
        queryset = queryset.filter(owner=owner)
    payment = queryset.filter(pk=payment_id).first()
    if payment is None:
        raise PaymentNotFound(f"No such payment: '{payment_id}'")
    return payment


def _begin(payment: Payment, operation: str, amount: int) -> None:
    payment.pending_operation = operation
    payment.operation_amount = amount
    payment.attempts = 0
    payment.next_attempt_at = None


def _move(
    *,
    actor: Any,
    payment: Payment,
    to: str,
    action: str,
    event: str | None = None,
    failure: tuple[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """One state change, written whole: the row, its audit record and its event.

    The caller has already posted the ledger entry that belongs to the change, in this transaction.
    """
    before = _audit_view(payment)
    previous = transition(payment, to, action=action)
    if to not in (S.PROCESSING, S.PENDING):
        if to != S.RECONCILE:
            payment.pending_operation = Op.NONE
        payment.next_attempt_at = None
    if failure is not None:
        payment.failure_code, payment.failure_message = failure[0][:64], failure[1][:500]
    payment.save()
    if event:
        emit_event(event_type=event, aggregate=payment, payload={**payment_payload(payment), **(extra or {})})
    audit_record(
        actor=actor,
        action=f"payment.{action}",
        entity_type="payment",
        entity_id=payment.pk,
        before={**before, "status": previous},
        after={**_audit_view(payment), **(extra or {})},
    )
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])


def _record_attempt(
    payment: Payment, operation: str, outcome: GatewayResult | Exception, latency_ms: int, *, key: str = ""
) -> None:
    if isinstance(outcome, GatewayResult):
        result, code = outcome.status, outcome.failure_code
    else:
        result = (
            "lost"
            if isinstance(outcome, GatewayResponseLost)
            else "retryable_error"
            if isinstance(outcome, GatewayRetryableError)
            else "error"
        )
        code = getattr(outcome, "code", "gateway_error")
    attempt = GatewayAttempt.objects.create(
        payment=payment,
        operation=operation,
        idempotency_key=key or operation_key(payment, operation if operation in Op.values else Op.AUTHORIZE),
        outcome=result,
        error_code=(code or "")[:64],
        latency_ms=latency_ms,
    )
    raw_log_gateway_exchange(payment=payment, attempt=attempt, outcome=outcome)


def _audit_view(payment: Payment) -> dict[str, Any]:
    return {
        "status": payment.status,
        "amount": payment.amount,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "pending_operation": payment.pending_operation,
        "failure_code": payment.failure_code,
    }


def payment_payload(payment: Payment) -> dict[str, Any]:
    """What events say about a payment (ids and money, never the token)."""
    return {
        "payment": payment.pk,
        "owner": payment.owner_id,
        "customer_id": payment.customer_id,
        "status": payment.status,
        "amount": payment.amount,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "failure_code": payment.failure_code,
        "subscription": payment.subscription_id or None,
    }
