"""A provider's review holds and voids (Authorize.Net's Fraud Detection Suite, its webhooks):

- `held` (fraud.held): a new charge is held for review. A payment still waiting for that charge's
  answer (pending, its authorization processing, or in reconcile) is authorized and held, as the
  answer would have said: its review opens (gateway_elevated_risk).
- `review_approved` (fraud.approved): the hold was lifted at the provider. A charge sent as a
  purchase (an automatic payment Paydesk's own rules did not hold: Authorize.Net's
  authCaptureTransaction) is captured by that approval, so Paydesk books it: the review closes
  approved at the provider and the payment succeeds. An authorization only (manual capture, or
  held by Paydesk's own rules too) stays in Paydesk's review: lifting the provider's hold moved no
  money, and Paydesk's reviewer still captures or voids it.
- `review_declined` (fraud.declined): the held charge was declined at the provider: a payment in
  review is canceled and its review closes denied; one still waiting for its answer fails
  (fraud_declined).
- `voided` (void.created): the transaction was voided at the provider: an authorized payment is
  canceled (its open review closed denied); a captured one not yet settled had its money given back
  to the card: a refund of what was left (our own refund by void is recognised by its reference).

A review decided at the provider names no Paydesk reviewer (decided_by is null), says where it was
decided in its note, and emits `payment.review_decided` like any decision.
"""

from __future__ import annotations

from dataclasses import replace

from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.outbox import emit_event
from apps.payments.models import Payment, Review
from apps.payments.provider_events import settling
from apps.payments.provider_events.changes import (
    Outcome,
    ProviderChange,
    ProviderChangeDeferred,
    adopt_reference,
    minor_amount,
)
from apps.payments.risk import GATEWAY_ELEVATED
from apps.payments.services import (
    begin_operation,
    capture_card_payment,
    open_review,
    payment_move,
    payment_payload,
)

S = Payment.Status
Op = Payment.Operation
_WAITING = frozenset({S.PENDING, S.PROCESSING, S.RECONCILE})


def provider_held(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    if payment.status == S.IN_REVIEW:
        return Outcome(False, f"{payment.pk} is already held for review")
    if not _awaiting_authorization(payment):
        return Outcome(False, f"{payment.pk} is {payment.status}; a hold of its charge changes nothing")
    adopt_reference(payment, change)
    open_review(actor=actor, payment=payment, reasons=[*payment.risk_reasons, GATEWAY_ELEVATED])
    return Outcome(True, f"{payment.pk} is held for review at the provider")


def provider_review_approved(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    if not _captured_by_approval(payment):
        return Outcome(False, f"{payment.pk} was only authorized: Paydesk's review decides its capture")
    if payment.status in _WAITING and payment.pending_operation == Op.AUTHORIZE:
        return settling.late_success(actor=actor, payment=payment, change=change, source=source)
    if payment.status != S.IN_REVIEW or not _close_review(
        actor=actor, payment=payment, approve=True, source=source
    ):
        return Outcome(False, f"{payment.pk} is {payment.status}; nothing waits for the provider's approval")
    adopt_reference(payment, change)
    amount = minor_amount(change, payment) or payment.amount
    # As a reviewer's approval goes: to `processing` with its capture, which is then booked.
    begin_operation(payment, Op.CAPTURE, amount)
    payment_move(
        actor=actor,
        payment=payment,
        to=S.PROCESSING,
        action="approve",
        extra={"source": "provider", **source},
    )
    capture_card_payment(
        actor=actor, payment=payment, amount=amount, action="capture", extra={"source": "provider", **source}
    )
    return Outcome(True, f"{payment.pk} succeeded: approved and captured at the provider")


def provider_review_declined(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    if payment.status == S.IN_REVIEW and _close_review(
        actor=actor, payment=payment, approve=False, source=source
    ):
        return _cancel(actor=actor, payment=payment, source=source, why="declined at the provider")
    if payment.status == S.PROCESSING and payment.pending_operation == Op.VOID:
        return _cancel(actor=actor, payment=payment, source=source, why="declined at the provider")
    failure = replace(change, failure_code=change.failure_code or "fraud_declined")
    return settling.late_failure(actor=actor, payment=payment, change=failure, source=source)


def provider_voided(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    if payment.status in (S.CANCELED, S.FAILED, S.REFUNDED):
        return Outcome(False, f"{payment.pk} is already {payment.status}")
    if payment.status == S.SUCCEEDED:
        left = payment.amount_captured - payment.amount_refunded
        refund = replace(change, kind="refunded", amount=left, major_amount=None)
        return settling.provider_refund(actor=actor, payment=payment, change=refund, source=source)
    if payment.status == S.PENDING:
        raise ProviderChangeDeferred(f"{payment.pk} is pending; its authorization is not recorded yet")
    if payment.status == S.IN_REVIEW:
        _close_review(actor=actor, payment=payment, approve=False, source=source)
    adopt_reference(payment, change)
    return _cancel(actor=actor, payment=payment, source=source, why="voided at the provider")


def _awaiting_authorization(payment: Payment) -> bool:
    return payment.status in _WAITING and payment.pending_operation == Op.AUTHORIZE


def _captured_by_approval(payment: Payment) -> bool:
    """Whether the payment's charge was sent as a purchase (capture with the authorization): an
    automatic payment that no rule of Paydesk's held before the gateway was called."""
    return payment.capture_method == Payment.CaptureMethod.AUTOMATIC and set(payment.risk_reasons) <= {
        GATEWAY_ELEVATED
    }


def _cancel(*, actor: Actor, payment: Payment, source: dict[str, str], why: str) -> Outcome:
    payment_move(
        actor=actor,
        payment=payment,
        to=S.CANCELED,
        action="cancel",
        event="payment.canceled",
        extra={"source": "provider", **source},
    )
    return Outcome(True, f"{payment.pk} canceled: {why}")


def _close_review(*, actor: Actor, payment: Payment, approve: bool, source: dict[str, str]) -> bool:
    """Closes the payment's open review as decided at the provider; False when none is open."""
    review = Review.objects.select_for_update().filter(payment=payment, status=Review.Status.OPEN).first()
    if review is None:
        return False
    review.status = Review.Status.APPROVED if approve else Review.Status.DENIED
    review.decided_by = None
    review.decided_at = timezone.now()
    where = source.get("webhook_event") or "its webhook"
    review.note = f"{'Approved' if approve else 'Declined'} at the payment provider ({where})."
    review.save(update_fields=["status", "decided_by", "decided_at", "note"])
    emit_event(
        event_type="payment.review_decided",
        aggregate=payment,
        payload={**payment_payload(payment), "decision": review.status, "decided_by": None, **source},
    )
    audit_record(
        actor=actor,
        action=f"review.{'approve' if approve else 'deny'}",
        entity_type="payment",
        entity_id=payment.pk,
        before={"review": Review.Status.OPEN},
        after={"review": review.status, "note": review.note, "decided_at": "provider", **source},
    )
    return True
