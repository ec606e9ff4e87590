"""A reviewer's decision on a payout held for review (the same rules as a payment's or deposit's
review, `apps.payments.services.review_decide`, and their errors).

`decide_payout_review(payout, approve, note, reviewer)`: an interactive staff login with the review
permission (an API key never decides), a note, never one's own payout (403 `review_own_payment`),
exactly one decision under the payout's row lock (the second reviewer gets 409 `review_closed`).
Approved, the payout is sent to the gateway by the worker after commit; denied, it is `canceled`
and its amount put back into the wallet, in the decision's transaction.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiKey, User
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.payments.errors import NoteRequired, ReviewClosed, ReviewOwnPayment, ReviewPermissionRequired
from apps.payments.selectors import REVIEW_PERMISSION
from apps.payouts.locks import lock_payout
from apps.payouts.models import Payout
from apps.payouts.services.booking import book_payout_reversal, payout_move
from apps.payouts.services.queueing import send_on_commit

S = Payout.Status
R = Payout.ReviewStatus


def decide_payout_review(*, payout: Payout | str, approve: bool, note: str, reviewer: Actor) -> Payout:
    """Approve (send it) or deny (cancel it, money back) a payout held for review; see the module."""
    if isinstance(reviewer, ApiKey):  # an API key acts for its user's customer role only
        raise ReviewPermissionRequired("Deciding a review needs an interactive staff login, not an API key.")
    if not (isinstance(reviewer, User) and reviewer.has_perm(REVIEW_PERMISSION)):
        raise ReviewPermissionRequired()
    note = (note or "").strip()
    if not note:
        raise NoteRequired("A note is required to decide a review.", param="note")
    payout_id = payout if isinstance(payout, str) else payout.pk
    return _decide(payout_id=payout_id, approve=approve, note=note, reviewer=reviewer)


@transaction.atomic(durable=True)
def _decide(*, payout_id: str, approve: bool, note: str, reviewer: User) -> Payout:
    payout = lock_payout(payout_id)
    if payout.wallet.user_id == reviewer.pk:
        # Four eyes: nobody decides on their own money.
        raise ReviewOwnPayment("A reviewer cannot decide a review of their own payout.")
    if payout.review_status != R.OPEN or payout.status != S.PENDING:
        raise ReviewClosed(
            "This payout is not held for review, or its review was already decided.",
            details={"status": payout.status, "review": payout.review_status or None},
        )
    payout.review_status = R.APPROVED if approve else R.DENIED
    payout.review_decided_by = reviewer
    payout.review_decided_at = timezone.now()
    payout.review_note = note[:2000]
    decided = ("review_status", "review_decided_by", "review_decided_at", "review_note")
    if approve:
        payout_move(actor=reviewer, payout=payout, to=S.PENDING, action="approve", fields=decided)
        send_on_commit(payout.pk)
    else:
        payout.save(update_fields=[*decided, "updated_at"])
        # The payout, then its wallet (locked by the function), then the audit chain.
        book_payout_reversal(actor=reviewer, payout=payout, to=S.CANCELED, action="deny")
    audit_record(
        actor=reviewer,
        action=f"review.{'approve' if approve else 'deny'}",
        entity_type="payout",
        entity_id=payout.pk,
        before={"review": R.OPEN},
        after={"review": payout.review_status, "note": payout.review_note},
    )
    return payout
