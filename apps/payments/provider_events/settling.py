"""Changes that move money or flag a payment: late successes and failures, refunds made at the
provider, disputes (see the package docstring)."""

from __future__ import annotations

from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.outbox import emit_event
from apps.payments import cache as payment_cache
from apps.payments.models import Payment, Refund
from apps.payments.provider_events.changes import (
    Outcome,
    ProviderChange,
    ProviderChangeDeferred,
    ProviderChangeRejected,
    adopt_reference,
    minor_amount,
)
from apps.payments.services import capture_card_payment, complete_refund, payment_move, payment_payload

S = Payment.Status
# A provider can report a capture for a payment whose outcome Paydesk is still waiting for, or one
# authorized and captured at the provider (its dashboard) rather than through Paydesk.
_LATE_SUCCESS_FROM = frozenset({S.PENDING, S.PROCESSING, S.RECONCILE, S.REQUIRES_CAPTURE})
_LATE_FAILURE_FROM = frozenset({S.PENDING, S.PROCESSING, S.RECONCILE})
_CAPTURE_PENDING = frozenset({S.PENDING, S.PROCESSING, S.RECONCILE, S.REQUIRES_CAPTURE, S.IN_REVIEW})


def late_success(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    if payment.status in (S.SUCCEEDED, S.REFUNDED):
        return Outcome(False, f"{payment.pk} is already {payment.status}")
    if payment.status not in _LATE_SUCCESS_FROM:
        if payment.status == S.IN_REVIEW:
            # Money held for review is captured by a reviewer's decision, not by the provider's news.
            return Outcome(False, f"{payment.pk} is held for review; the success waits for the decision")
        raise ProviderChangeRejected(
            f"the provider reports a success for {payment.pk}, which Paydesk recorded as {payment.status}"
        )
    amount = minor_amount(change, payment) or payment.amount
    if not 0 < amount <= payment.amount:
        raise ProviderChangeRejected(
            f"the provider reports {amount} captured for {payment.pk}, authorized for {payment.amount}"
        )
    adopt_reference(payment, change)
    capture_card_payment(
        actor=actor, payment=payment, amount=amount, action="capture", extra={"source": "provider", **source}
    )
    return Outcome(True, f"{payment.pk} succeeded ({amount} captured at the provider)")


def late_failure(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    if payment.status not in _LATE_FAILURE_FROM:
        return Outcome(False, f"{payment.pk} is {payment.status}; a failure can't change it")
    message = change.failure_message or "The payment was declined."
    adopt_reference(payment, change)
    payment_move(
        actor=actor,
        payment=payment,
        to=S.FAILED,
        action="fail",
        event="payment.failed",
        failure=(change.failure_code or "gateway_declined", message),
        extra={"source": "provider", **source},
    )
    return Outcome(True, f"{payment.pk} failed ({payment.failure_code})")


def provider_refund(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    """A refund made at the provider: a Refund row and its ledger entry, once per refund reference.

    Our own refunds reach the provider too, and its news of them may arrive before our own answer
    is written (the refund row still pending, without the reference): those are deferred, so the
    reference is known by the time it's looked at again and the refund is never counted twice.
    """
    reference = change.refund_reference
    if reference and payment.refunds.filter(gateway_reference=reference).exists():
        return Outcome(False, f"refund {reference} is already recorded on {payment.pk}")
    if payment.refunds.filter(status=Refund.Status.PENDING).exists():
        raise ProviderChangeDeferred(f"a refund of {payment.pk} is in flight; it may be this one")
    if payment.status in _CAPTURE_PENDING:
        raise ProviderChangeDeferred(f"{payment.pk} is {payment.status}; its capture is not recorded yet")
    amount = minor_amount(change, payment)
    refundable = payment.amount_captured - payment.amount_refunded
    if payment.status not in (S.SUCCEEDED, S.REFUNDED) or amount is None or not 0 < amount <= refundable:
        raise ProviderChangeRejected(
            f"the provider refunded {amount} of {payment.pk} ({payment.status}), "
            f"which has {refundable} left to refund"
        )
    refund = Refund.objects.create(
        payment=payment, amount=amount, reason="Refunded at the provider", gateway_reference=reference[:255]
    )
    audit_record(
        actor=actor,
        action="refund.create",
        entity_type="refund",
        entity_id=refund.pk,
        after={"payment": payment.pk, "amount": amount, "gateway_reference": reference, **source},
    )
    complete_refund(actor=actor, payment=payment, refund=refund)
    return Outcome(True, f"refund {reference or refund.pk} of {amount} recorded on {payment.pk}")


def provider_refund_failed(*, payment: Payment, change: ProviderChange, **_: object) -> Outcome:
    known = payment.refunds.filter(gateway_reference=change.refund_reference).first()
    if known is None or known.status != Refund.Status.SUCCEEDED:
        return Outcome(False, f"refund {change.refund_reference} was never recorded; nothing to undo")
    # The money was credited back in the books; taking it back is a correction a person makes.
    raise ProviderChangeRejected(
        f"refund {change.refund_reference} of {payment.pk} failed at the provider after it was recorded"
    )


def dispute_opened(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    """Flags the payment (`dispute_reference`, `dispute_reason`): no money moves until it's decided."""
    if payment.dispute_reference == change.dispute_reference:
        return Outcome(False, f"dispute {change.dispute_reference} is already flagged on {payment.pk}")
    before = {"dispute": payment.dispute_reference or None}
    payment.dispute_reference = change.dispute_reference[:255]
    payment.dispute_reason = (change.dispute_reason or "unknown")[:100]
    payment.save(update_fields=["dispute_reference", "dispute_reason", "updated_at"])
    details = {
        "dispute": change.dispute_reference,
        "dispute_reason": change.dispute_reason or "unknown",
        "dispute_amount": minor_amount(change, payment),
        **source,
    }
    emit_event(
        event_type="payment.dispute_opened",
        aggregate=payment,
        payload={**payment_payload(payment), **details},
    )
    audit_record(
        actor=actor,
        action="payment.dispute_opened",
        entity_type="payment",
        entity_id=payment.pk,
        before=before,
        after=details,
    )
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])
    return Outcome(True, f"dispute {change.dispute_reference} flagged on {payment.pk}")
