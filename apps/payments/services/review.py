"""Review decisions: approve (capture) or deny (void) a payment held for review."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiKey, User
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.outbox import emit_event
from apps.payments.errors import NoteRequired, ReviewClosed, ReviewOwnPayment, ReviewPermissionRequired
from apps.payments.locks import lock_payment
from apps.payments.models import Payment, Review
from apps.payments.selectors import REVIEW_PERMISSION
from apps.payments.services.booking import (
    begin_operation,
    capture_wallet_hold,
    payment_move,
    release_wallet_hold,
)
from apps.payments.services.payloads import payment_payload
from apps.payments.services.steps import run_pending_operation

S = Payment.Status
Op = Payment.Operation


def review_decide(*, actor: Actor, payment_id: str, decision: str, note: str) -> Payment:
    """Approve (capture) or deny (void) a payment held for review. Exactly one decision wins.

    The decision is taken and committed under the payment's row lock (so of two reviewers racing,
    the second sees `review_closed`); the capture or void then runs at the gateway like any other
    step, and a gateway failure leaves it to the usual retries, never undoing the decision.
    """
    if isinstance(actor, ApiKey):  # an API key acts for its user's customer role only
        raise ReviewPermissionRequired("Deciding a review needs an interactive staff login, not an API key.")
    reviewer = _person(actor)
    if not (reviewer is not None and reviewer.has_perm(REVIEW_PERMISSION)):
        raise ReviewPermissionRequired()
    note = (note or "").strip()
    if not note:
        raise NoteRequired("A note is required to decide a review.", param="note")
    payment = _review_decide(actor=actor, payment_id=payment_id, decision=decision, note=note)
    return run_pending_operation(actor=actor, payment_id=payment.pk, payment=payment)


def _person(actor: Actor) -> User | None:
    """Who decides: the user, or the user of the API key the call was made with (the key is the
    audit actor, the person is the reviewer)."""
    return actor.user if isinstance(actor, ApiKey) else actor  # type: ignore[return-value]


@transaction.atomic(durable=True)
def _review_decide(*, actor: Actor, payment_id: str, decision: str, note: str) -> Payment:
    payment = lock_payment(payment_id)
    reviewer = _person(actor)
    if reviewer is not None and payment.owner_id == reviewer.pk:
        # Four eyes: nobody decides on their own money (API key or session, API or admin).
        raise ReviewOwnPayment()
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
    review.decided_by = _person(actor)
    review.decided_at = timezone.now()
    review.note = note[:2000]
    review.save(update_fields=["status", "decided_by", "decided_at", "note"])
    emit_event(
        event_type="payment.review_decided",
        aggregate=payment,
        payload={**payment_payload(payment), "decision": review.status, "decided_by": review.decided_by_id},
    )
    # Wallet rows are locked before the audit chain's lock (taken by audit_record), never after:
    # a transfer holding the wallet and waiting for the chain would otherwise deadlock with us.
    if payment.method_type == Payment.MethodType.WALLET:
        if approve:
            capture_wallet_hold(actor=actor, payment=payment, amount=payment.amount)
        else:
            release_wallet_hold(actor=actor, payment=payment)
    else:
        begin_operation(payment, Op.CAPTURE if approve else Op.VOID, payment.amount if approve else 0)
        payment_move(actor=actor, payment=payment, to=S.PROCESSING, action="approve" if approve else "deny")
    audit_record(
        actor=actor,
        action=f"review.{decision}",
        entity_type="payment",
        entity_id=payment.pk,
        before={"review": Review.Status.OPEN},
        after={"review": review.status, "note": review.note},
    )
    return payment
