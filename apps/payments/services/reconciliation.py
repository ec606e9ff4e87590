"""Reconciliation: asking the gateway what happened to a payment whose outcome Paydesk does not know."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction

from apps.core.actors import Actor
from apps.gateways import GatewayError, GatewayResult, get_gateway
from apps.gateways.calls import NOT_FOUND, attempt_record, not_found_may_be_too_soon
from apps.payments import risk
from apps.payments.locks import lock_payment
from apps.payments.models import Payment, Refund
from apps.payments.selectors import payments_stuck, payments_to_reconcile, refunds_stuck
from apps.payments.services.booking import begin_operation, capture_card_payment, open_review, payment_move
from apps.payments.services.refunds import run_refund
from apps.payments.services.steps import (
    operation_key,
    payment_mark_reconcile,
    run_pending_operation,
)

logger = logging.getLogger(__name__)

S = Payment.Status
Op = Payment.Operation


@dataclass
class ReconcileReport:
    """What one reconciliation pass did (or, in a dry run, would do), in the order it did it.

    `stuck`: (payment, status it was in) moved to `reconcile` first; `reconciled`: (payment,
    before, after); `gateway_errors`: (payment, error code) left in `reconcile` for the next pass;
    `refunds`: (refund, status after the retry; `pending` in a dry run); `to_reconcile`: in a dry
    run, the payments already in `reconcile` that would be asked about.
    """

    dry_run: bool
    stuck: list[tuple[str, str]] = field(default_factory=list)
    reconciled: list[tuple[str, str, str]] = field(default_factory=list)
    gateway_errors: list[tuple[str, str]] = field(default_factory=list)
    refunds: list[tuple[str, str]] = field(default_factory=list)
    to_reconcile: list[str] = field(default_factory=list)

    @property
    def settled(self) -> int:
        """Payments reconciled and refunds retried."""
        return len(self.reconciled) + (0 if self.dry_run else len(self.refunds))


def payments_reconcile_due(
    *,
    older_than: timedelta,
    dry_run: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReconcileReport:
    """One pass of reconciliation, behind both the beat task and `manage.py reconcile_payments`.

    Moves stuck payments (no step under way, no retry to come) to `reconcile`, asks the gateway
    about every payment in `reconcile` untouched for `older_than`, then runs again the refunds whose
    retry was lost. A gateway that does not answer for one payment leaves that payment in
    `reconcile` for the next pass and the pass goes on: the other payments and the stuck refunds
    are still settled. `on_progress(done, total)` follows the payments being reconciled.
    """
    report = ReconcileReport(dry_run=dry_run)
    statuses = dict(
        Payment.objects.filter(pk__in=payments_stuck(older_than=older_than)).values_list("pk", "status")
    )
    if dry_run:
        report.refunds = [
            (refund_id, Refund.Status.PENDING) for refund_id in refunds_stuck(older_than=older_than)
        ]
        report.stuck = list(statuses.items())
        report.to_reconcile = payments_to_reconcile(older_than=older_than)
        return report
    for payment_id, before in statuses.items():
        payment_mark_reconcile(actor=None, payment_id=payment_id, reason="stuck")
        report.stuck.append((payment_id, before))
    todo = payments_to_reconcile(older_than=older_than)
    for done, payment_id in enumerate(todo, start=1):
        try:
            before, after = payment_reconcile(actor=None, payment_id=payment_id)
            report.reconciled.append((payment_id, before, after))
        except GatewayError as exc:
            logger.warning("payment %s left in reconcile: gateway error %s", payment_id, exc.code)
            report.gateway_errors.append((payment_id, exc.code))
        if on_progress is not None:
            on_progress(done, len(todo))
    for refund_id in refunds_stuck(older_than=older_than):
        report.refunds.append((refund_id, run_refund(actor=None, refund_id=refund_id).status))
    return report


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
    # The answer is in hand: its attempt is written in this settling transaction.
    attempt_record(
        subject=payment,
        operation="retrieve",
        idempotency_key=operation_key(payment, Op.AUTHORIZE),
        outcome=known or NOT_FOUND,
        latency_ms=0,
    )
    if known is None:
        if not_found_may_be_too_soon(gateway=payment.gateway, created_at=payment.created_at):
            return payment  # not found yet is not "never"
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
        capture_card_payment(
            actor=actor, payment=payment, amount=known.amount or payment.amount, action="reconcile"
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
        payment_move(
            actor=actor,
            payment=payment,
            to=S.REQUIRES_CAPTURE,
            action="reconcile",
            event="payment.requires_capture",
        )
    else:
        # Not allowed by the state machine from reconcile, so go through requires_capture: the
        # capture then runs as an ordinary step.
        payment_move(actor=actor, payment=payment, to=S.REQUIRES_CAPTURE, action="reconcile")
        begin_operation(payment, Op.CAPTURE, payment.amount)
        payment_move(actor=actor, payment=payment, to=S.PROCESSING, action="capture")
    return payment
