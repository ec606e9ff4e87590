"""Writing a payout's changes: the three money movements (one call each of the functions of
migration payouts 0002, through `apps.wallets.engine`) and the moves that carry no money.

Every function here runs inside its caller's transaction, on the payout row the caller has locked
(creation: on nothing; its function locks the wallet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.audit.services import audit_context, audit_record
from apps.core.actors import Actor
from apps.core.ids import new_pk
from apps.core.models import OutboxEvent
from apps.core.outbox import emit_event, hand_over_on_commit
from apps.ledger.models import JournalEntry, LedgerAccount
from apps.payouts.models import Payout
from apps.payouts.states import transition
from apps.wallets import cache as wallet_cache
from apps.wallets import engine

S = Payout.Status
# The last eight parameters of each: engine.audit_args (who acts, the audit chains, their lock).
_CREATE_SQL = "SELECT * FROM payout_create_v1(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_PAY_SQL = "SELECT payout_pay_v1(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_REVERSE_SQL = (
    "SELECT * FROM payout_reverse_v1(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def payout_payload(payout: Payout) -> dict[str, Any]:
    """What a payout's events say about it (as `payout_payload_v1` of migration 0002 builds it)."""
    return {
        "payout": payout.pk,
        "wallet": payout.wallet_id,
        "status": payout.status,
        "amount": payout.amount,
        "currency": payout.currency,
        "failure_code": payout.failure_code,
        "review_status": payout.review_status,
    }


def audit_view(payout: Payout) -> dict[str, Any]:
    """A payout as its audit rows show it (as `payout_audit_view_v1` does)."""
    return {
        "status": payout.status,
        "amount": payout.amount,
        "currency": payout.currency,
        "failure_code": payout.failure_code,
        "gateway_reference": payout.gateway_reference,
        "review_status": payout.review_status,
    }


@dataclass(frozen=True)
class NewPayout:
    """What the caller decided about a payout to create; the function decides the rest."""

    payout_id: str
    user_id: str
    wallet_id: str
    amount: int
    description: str | None
    destination_token: str
    destination_type: str
    destination_last4: str
    gateway: str


def book_payout_create(*, actor: Actor, new: NewPayout) -> Payout:
    """The payout created and its amount moved from the wallet into transit, in one call of
    `payout_create_v1`: a frozen wallet (`WalletInactive`) or one short of the amount
    (`InsufficientFunds`) is refused before anything is written. Returns the payout as written."""
    events = [new_pk(OutboxEvent), new_pk(OutboxEvent)]  # wallet.funds_deducted, payout.created
    sealed = Payout._meta.get_field("destination_token").seal(new.destination_token, pk=new.payout_id)
    currency, created_at, reasons, _balance = engine.call(
        _CREATE_SQL,
        [
            new.payout_id,
            new.user_id,
            new.wallet_id,
            new.amount,
            new.description,
            str(sealed),
            new.destination_type,
            new.destination_last4,
            new.gateway,
            settings.PAYOUT_REVIEW_AMOUNT_THRESHOLD,
            settings.DEPOSIT_REVIEW_AMOUNT_THRESHOLD,
            settings.PAYOUT_RECENT_DEPOSIT_WINDOW_SECONDS,
            new_pk(JournalEntry),
            new_pk(LedgerAccount),  # the in-transit account's id, if this is the currency's first payout
            events,
            *engine.audit_args(audit_context(actor=actor)),
        ],
    )
    hand_over_on_commit(events)
    wallet_cache.bump_on_commit(wallet_ids=[new.wallet_id], user_ids=[new.user_id])
    payout = Payout(
        id=new.payout_id,
        wallet_id=new.wallet_id,
        amount=new.amount,
        currency=currency,
        description=new.description,
        status=S.PENDING,
        destination_token=new.destination_token,
        destination_type=new.destination_type,
        destination_last4=new.destination_last4,
        gateway=new.gateway,
        review_reasons=list(reasons),
        review_status=Payout.ReviewStatus.OPEN if reasons else Payout.ReviewStatus.NONE,
        created_at=created_at,
        updated_at=created_at,
    )
    payout._state.adding, payout._state.db = False, "default"
    return payout


def book_payout_paid(*, actor: Actor, payout: Payout, gateway_reference: str) -> None:
    """The locked `in_transit` payout `paid`: in one call of `payout_pay_v1`, the entry (in transit ->
    the gateway's clearing account), the row, its `payout.paid` event and its audit row."""
    transition(payout, S.PAID, action="pay")
    event = new_pk(OutboxEvent)
    (updated_at,) = engine.call(
        _PAY_SQL,
        [
            payout.pk,
            gateway_reference,
            new_pk(JournalEntry),
            new_pk(LedgerAccount),
            new_pk(LedgerAccount),
            event,
            *engine.audit_args(audit_context(actor=actor)),
        ],
    )
    hand_over_on_commit([event])
    payout.status, payout.updated_at, payout.next_attempt_at = S.PAID, updated_at, None
    payout.gateway_reference = gateway_reference or payout.gateway_reference


def book_payout_reversal(
    *,
    actor: Actor,
    payout: Payout,
    to: str,
    action: str,
    failure: tuple[str, str] | None = None,
    gateway_reference: str = "",
) -> None:
    """The locked payout `failed` or `canceled`, its amount put back into the wallet with a new,
    reversing entry: one call of `payout_reverse_v1` (the entry, the balance and its
    `wallet.funds_added` event, the row, its `payout.<to>` event and its `payout.<action>` audit row)."""
    transition(payout, to, action=action)
    events = [new_pk(OutboxEvent), new_pk(OutboxEvent)]
    code, message = failure if failure is not None else (None, None)
    updated_at, _balance, owner_id = engine.call(
        _REVERSE_SQL,
        [
            payout.pk,
            to,
            action,
            code,
            message,
            gateway_reference,
            new_pk(JournalEntry),
            new_pk(LedgerAccount),
            events,
            *engine.audit_args(audit_context(actor=actor)),
        ],
    )
    hand_over_on_commit(events)
    wallet_cache.bump_on_commit(wallet_ids=[payout.wallet_id], user_ids=[owner_id])
    payout.status, payout.updated_at, payout.next_attempt_at = to, updated_at, None
    if failure is not None:
        payout.failure_code, payout.failure_message = code[:64], message[:500]  # type: ignore[index]
    if payout.review_status == Payout.ReviewStatus.OPEN:
        payout.review_status = Payout.ReviewStatus.WITHDRAWN
    payout.gateway_reference = gateway_reference or payout.gateway_reference


def payout_move(
    *,
    actor: Actor,
    payout: Payout,
    to: str,
    action: str,
    event: str | None = None,
    fields: tuple[str, ...] = (),
) -> None:
    """A change that moves no money (sent to the gateway: `in_transit`; a retry scheduled; a review
    decided), written whole: the row (its status and `fields`), its audit record and its event."""
    before = payout.status
    if to != before:
        transition(payout, to, action=action)
    payout.status = to
    payout.updated_at = timezone.now()
    payout.save(update_fields=["status", "updated_at", *fields])
    if event:
        emit_event(event_type=event, aggregate=payout, payload=payout_payload(payout))
    audit_record(
        actor=actor,
        action=f"payout.{action}",
        entity_type="payout",
        entity_id=payout.pk,
        before={"status": before},
        after=audit_view(payout),
    )
