"""Reconciliation: asking the gateway what happened to a payment whose outcome Paydesk does not know."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.actors import Actor
from apps.payments import risk
from apps.payments.gateways import get_gateway
from apps.payments.gateways.base import (
    GatewayResult,
)
from apps.payments.locks import lock_payment
from apps.payments.models import Payment
from apps.payments.services.booking import begin_operation, capture_card_money, open_review, payment_move
from apps.payments.services.steps import (
    operation_key,
    record_gateway_attempt,
    run_pending_operation,
)

logger = logging.getLogger(__name__)

S = Payment.Status
Op = Payment.Operation


def payment_reconcile(*, actor: Actor, payment_id: str) -> tuple[str, str]:
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
def _reconcile_settle(*, actor: Actor, payment_id: str, known: GatewayResult | None) -> Payment:
    payment = lock_payment(payment_id)
    if payment.status != S.RECONCILE:
        return payment
    record_gateway_attempt(
        payment, "retrieve", known or GatewayResult(status="failed", failure_code="not_found"), 0
    )
    if known is None:
        if payment.gateway == "stripe" and payment.created_at > timezone.now() - timedelta(
            seconds=settings.STRIPE_SEARCH_GRACE_SECONDS
        ):
            # Stripe's search index lags creation by up to a minute: not found yet is not "never".
            return payment
        payment_move(
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
        capture_card_money(payment, known.amount or payment.amount)
        payment_move(
            actor=actor, payment=payment, to=S.SUCCEEDED, action="reconcile", event="payment.succeeded"
        )
    elif known.status == "voided":
        payment_move(
            actor=actor, payment=payment, to=S.CANCELED, action="reconcile", event="payment.canceled"
        )
    elif known.status == "failed":
        payment_move(
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
        open_review(actor=actor, payment=payment, reasons=reasons)
    elif payment.capture_method == Payment.CaptureMethod.MANUAL:
        payment_move(actor=actor, payment=payment, to=S.REQUIRES_CAPTURE, action="reconcile")
    else:
        # Not allowed by the state machine from reconcile, so go through requires_capture: the
        # capture then runs as an ordinary step.
        payment_move(actor=actor, payment=payment, to=S.REQUIRES_CAPTURE, action="reconcile")
        begin_operation(payment, Op.CAPTURE, payment.amount)
        payment_move(actor=actor, payment=payment, to=S.PROCESSING, action="capture")
    return payment
