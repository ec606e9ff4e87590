"""Review decisions: approve (capture) or deny (void) a payment or a deposit held for review.

One queue (`Review`, of a payment or of a deposit) and one decision service, `review_decide`, for
the API and the admin: the same checks (staff login with the review permission, a note, never
one's own money), one decision per review under the row locks, then the gateway step.
"""

from __future__ import annotations

from typing import Any, overload

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
from apps.wallets.deposits import deposit_run
from apps.wallets.deposits_review import deposit_decided, lock_deposit
from apps.wallets.models import Transaction
from apps.wallets.payloads import transaction_payload

S = Payment.Status
Op = Payment.Operation


@overload
def review_decide(*, actor: Actor, payment_id: str, decision: str, note: str) -> Payment: ...
@overload
def review_decide(*, actor: Actor, deposit_id: str, decision: str, note: str) -> Transaction: ...
def review_decide(
    *,
    actor: Actor,
    decision: str,
    note: str,
    payment_id: str | None = None,
    deposit_id: str | None = None,
) -> Payment | Transaction:
    """Approve (capture) or deny (void) a payment — or a deposit — held for review. Exactly one
    decision wins.

    The decision is taken and committed under the row lock (so of two reviewers racing, the
    second sees `review_closed`); the capture or void then runs at the gateway like any other
    step, and a gateway failure leaves it to the usual retries, never undoing the decision. An
    approved deposit is credited once captured; a denied one fails, its authorization voided.
    """
    if isinstance(actor, ApiKey):  # an API key acts for its user's customer role only
        raise ReviewPermissionRequired("Deciding a review needs an interactive staff login, not an API key.")
    reviewer = _person(actor)
    if not (reviewer is not None and reviewer.has_perm(REVIEW_PERMISSION)):
        raise ReviewPermissionRequired()
    note = (note or "").strip()
    if not note:
        raise NoteRequired("A note is required to decide a review.", param="note")
    if payment_id is not None and deposit_id is None:
        payment = _review_decide(actor=actor, payment_id=payment_id, decision=decision, note=note)
        return run_pending_operation(actor=actor, payment_id=payment.pk, payment=payment)
    if deposit_id is not None and payment_id is None:
        txn = _deposit_review_decide(actor=actor, deposit_id=deposit_id, decision=decision, note=note)
        return deposit_run(actor=actor, transaction_id=txn.pk, txn=txn)
    raise TypeError("review_decide needs exactly one of payment_id and deposit_id")


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
    _record_decision(review=review, actor=actor, approve=approve, note=note)
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


def _record_decision(*, review: Review, actor: Actor, approve: bool, note: str) -> None:
    review.status = Review.Status.APPROVED if approve else Review.Status.DENIED
    review.decided_by = _person(actor)
    review.decided_at = timezone.now()
    review.note = note[:2000]
    review.save(update_fields=["status", "decided_by", "decided_at", "note"])


@transaction.atomic(durable=True)
def _deposit_review_decide(*, actor: Actor, deposit_id: str, decision: str, note: str) -> Transaction:
    # The deposit's wallet, then the deposit, then its review (the wallets' lock order), all
    # before the audit chain's lock.
    wallet, txn = lock_deposit(deposit_id)
    reviewer = _person(actor)
    if reviewer is not None and wallet.user_id == reviewer.pk:
        raise ReviewOwnPayment("A reviewer cannot decide a review of their own deposit.")
    review = Review.objects.select_for_update().filter(deposit=txn).first()
    if review is None:
        raise ReviewClosed("This deposit is not held for review.")
    if review.status != Review.Status.OPEN or txn.status != Transaction.Status.IN_REVIEW:
        raise ReviewClosed(
            f"This review was already {review.status} by {review.decided_by or 'someone'}.",
            details={"status": review.status},
        )
    approve = decision == "approve"
    _record_decision(review=review, actor=actor, approve=approve, note=note)
    deposit_decided(txn=txn, approve=approve)
    emit_event(
        event_type="transaction.review_decided",
        aggregate=txn,
        payload={**transaction_payload(txn), "decision": review.status, "decided_by": review.decided_by_id},
    )
    audit_record(
        actor=actor,
        action=f"review.{decision}",
        entity_type="transaction",
        entity_id=txn.pk,
        before={"review": Review.Status.OPEN, "status": Transaction.Status.IN_REVIEW},
        after={"review": review.status, "note": review.note, "operation": txn.pending_operation},
    )
    return txn


def open_deposit_review(*, deposit: Transaction, reasons: list[str]) -> Any:
    """Puts a deposit the risk rules held into the review queue (in the settlement's transaction);
    registered with wallets as its review policy (apps.payments.apps)."""
    return Review.objects.create(deposit=deposit, reasons=reasons)
