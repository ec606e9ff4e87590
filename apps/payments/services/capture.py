"""Capturing or canceling an authorized payment (card: a gateway step; wallet: the hold)."""

from __future__ import annotations

from django.db import transaction

from apps.accounts.models import User
from apps.core.actors import Actor
from apps.payments.errors import CaptureExceedsAuthorized, PaymentUnexpectedState
from apps.payments.locks import lock_payment
from apps.payments.models import Payment
from apps.payments.services.booking import (
    begin_operation,
    capture_wallet_hold,
    payment_move,
    release_wallet_hold,
)
from apps.payments.services.steps import run_pending_operation

S = Payment.Status
Op = Payment.Operation


def payment_capture(*, actor: Actor, owner: User, payment_id: str, amount: int | None = None) -> Payment:
    payment = _payment_begin_capture(actor=actor, owner=owner, payment_id=payment_id, amount=amount)
    return run_pending_operation(actor=actor, payment_id=payment.pk, payment=payment)


@transaction.atomic(durable=True)
def _payment_begin_capture(*, actor: Actor, owner: User, payment_id: str, amount: int | None) -> Payment:
    payment = lock_payment(payment_id, owner=owner)
    if payment.status != S.REQUIRES_CAPTURE:
        raise PaymentUnexpectedState(f"Cannot capture a payment whose status is '{payment.status}'.")
    amount = payment.amount if amount is None else amount
    if amount > payment.amount:
        raise CaptureExceedsAuthorized(
            f"amount {amount} exceeds the authorized {payment.amount}.", param="amount"
        )
    if payment.method_type == Payment.MethodType.WALLET:
        capture_wallet_hold(actor=actor, payment=payment, amount=amount)
        return payment
    begin_operation(payment, Op.CAPTURE, amount)
    payment_move(actor=actor, payment=payment, to=S.PROCESSING, action="capture")
    return payment


def payment_cancel(*, actor: Actor, owner: User, payment_id: str, reason: str = "") -> Payment:
    payment = _payment_begin_cancel(actor=actor, owner=owner, payment_id=payment_id, reason=reason)
    return run_pending_operation(actor=actor, payment_id=payment.pk, payment=payment)


@transaction.atomic(durable=True)
def _payment_begin_cancel(*, actor: Actor, owner: User, payment_id: str, reason: str) -> Payment:
    payment = lock_payment(payment_id, owner=owner)
    if payment.status != S.REQUIRES_CAPTURE:
        raise PaymentUnexpectedState(f"Cannot cancel a payment whose status is '{payment.status}'.")
    if reason:
        payment.metadata = {**payment.metadata, "cancellation_reason": reason[:500]}
    if payment.method_type == Payment.MethodType.WALLET:
        release_wallet_hold(actor=actor, payment=payment)
        return payment
    begin_operation(payment, Op.VOID, 0)
    payment_move(actor=actor, payment=payment, to=S.PROCESSING, action="cancel")
    return payment
