"""Writing a payment's change into the books, shared by every write of the package and by
`apps.payments.provider_events`: the state change with its audit row and event (`payment_move`), and
the ledger postings that go with captures, wallet holds and refunds.

Every function here runs inside its caller's transaction, on rows the caller has locked.
"""

from __future__ import annotations

import json
from typing import Any

from apps.audit.services import audit_context, audit_record
from apps.core.actors import Actor
from apps.core.ids import new_pk
from apps.core.models import OutboxEvent
from apps.core.outbox import emit_event, hand_over_on_commit
from apps.core.scrubbing import scrub
from apps.ledger.models import JournalEntry, LedgerAccount
from apps.payments import cache as payment_cache
from apps.payments.models import Payment, Refund, Review
from apps.payments.services.payloads import audit_view, payment_payload
from apps.payments.states import transition
from apps.wallets import cache as wallet_cache
from apps.wallets import engine
from apps.wallets.models import Wallet

S = Payment.Status
Op = Payment.Operation
# The last eight parameters: apps.wallets.engine.audit_args.
_CARD_CAPTURE_SQL = (
    "SELECT * FROM payment_card_capture_v2(%s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, "
    "%s, %s, %s, %s, %s, %s, %s, %s)"
)
_WALLET_HOLD_SQL = "SELECT * FROM payment_wallet_hold_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_WALLET_CAPTURE_SQL = (
    "SELECT * FROM payment_wallet_capture_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_WALLET_HOLD_CAPTURE_SQL = (
    "SELECT * FROM payment_wallet_hold_capture_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_WALLET_HOLD_RELEASE_SQL = (
    "SELECT * FROM payment_wallet_hold_release_v2(%s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_WALLET_REFUND_SQL = "SELECT * FROM payment_wallet_refund_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_CARD_REFUND_SQL = (
    "SELECT * FROM payment_card_refund_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def payment_move(
    *,
    actor: Actor,
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
    before = audit_view(payment)
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
        after={**audit_view(payment), **(extra or {})},
    )
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])


def begin_operation(payment: Payment, operation: str, amount: int) -> None:
    payment.pending_operation = operation
    payment.operation_amount = amount
    payment.attempts = 0
    payment.next_attempt_at = None


def capture_card_payment(
    *, actor: Actor, payment: Payment, amount: int, action: str, extra: dict[str, str] | None = None
) -> None:
    """Captured card money booked and the payment `succeeded`, in one call of
    `payment_card_capture_v2` (migration payments 0015): the entry (the gateway's clearing account
    owes `amount` to the platform's revenue), the payment row, its `payment.succeeded` event and its
    `payment.<action>` audit row, as `payment_move` writes them. `extra` joins the event's payload
    and the audit row's `after`."""
    transition(payment, S.SUCCEEDED, action=action)  # refuses a payment that can't succeed from here
    event = new_pk(OutboxEvent)
    (updated_at,) = engine.call(
        _CARD_CAPTURE_SQL,
        [
            payment.pk,
            amount,
            action,
            json.dumps(extra) if extra else None,
            json.dumps(scrub(extra)) if extra else None,  # as audit_record scrubs it
            payment.gateway_reference,
            payment.card_brand,
            payment.card_last4,
            new_pk(JournalEntry),
            new_pk(LedgerAccount),  # the system accounts' ids, if this is the currency's first capture
            new_pk(LedgerAccount),
            event,
            *engine.audit_args(audit_context(actor=actor)),
        ],
    )
    hand_over_on_commit([event])
    payment.amount_captured = amount
    payment.pending_operation = Op.NONE
    payment.next_attempt_at = None
    payment.updated_at = updated_at
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])


def hold_wallet_payment(*, actor: Actor, payment: Payment, wallet: Wallet, review: bool) -> None:
    """Holds a new wallet payment's amount, in one call of `payment_wallet_hold_v2` (migration
    payments 0016): the entry (the wallet's money to the holds account), the balance and its
    `wallet.funds_deducted` event and, unless held for `review` (the caller opens it), the payment
    `requires_capture` with its audit row. A frozen wallet or one short of the amount is refused
    (`WalletInactive`, `InsufficientFunds`) before anything is written. `wallet`: locked by the
    caller."""
    if not review:
        transition(payment, S.REQUIRES_CAPTURE, action="authorize")  # refuses an unexpected state
    event = new_pk(OutboxEvent)  # wallet.funds_deducted
    updated_at, balance = engine.call(
        _WALLET_HOLD_SQL,
        [
            payment.pk,
            review,
            new_pk(JournalEntry),
            new_pk(LedgerAccount),  # the holds account's id, if this is the currency's first hold
            event,
            *engine.audit_args(audit_context(actor=actor)),
        ],
    )
    hand_over_on_commit([event])
    wallet.balance = balance
    wallet_cache.bump_on_commit(wallet_ids=[wallet.pk], user_ids=[wallet.user_id])
    if not review:
        payment.pending_operation = Op.NONE
        payment.next_attempt_at = None
        payment.updated_at = updated_at
        payment_cache.bump_on_commit(owner_ids=[payment.owner_id])


def capture_wallet_payment(*, actor: Actor, payment: Payment, wallet: Wallet) -> None:
    """A new automatic wallet payment paid at once, in one call of `payment_wallet_capture_v2`
    (migration payments 0016): the entry (the wallet pays the platform's revenue), the balance,
    the `wallet.funds_deducted` event, the succeeded payment, its `payment.succeeded` event and its
    audit row. A frozen wallet or one short of the amount is refused (`WalletInactive`,
    `InsufficientFunds`) before anything is written. `wallet`: locked by the caller."""
    transition(payment, S.SUCCEEDED, action="capture")  # refuses a payment that can't succeed from here
    events = [new_pk(OutboxEvent), new_pk(OutboxEvent)]  # wallet.funds_deducted, payment.succeeded
    updated_at, balance = engine.call(
        _WALLET_CAPTURE_SQL,
        [
            payment.pk,
            new_pk(JournalEntry),
            new_pk(LedgerAccount),  # the revenue account's id, if this is the currency's first payment
            events,
            *engine.audit_args(audit_context(actor=actor)),
        ],
    )
    hand_over_on_commit(events)
    wallet.balance = balance
    payment.amount_captured = payment.amount
    payment.pending_operation = Op.NONE
    payment.next_attempt_at = None
    payment.updated_at = updated_at
    wallet_cache.bump_on_commit(wallet_ids=[wallet.pk], user_ids=[wallet.user_id])
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])


def capture_wallet_hold(*, actor: Actor, payment: Payment, amount: int) -> None:
    """Takes `amount` of the held funds as revenue and gives the rest back to the wallet, in one
    call of `payment_wallet_hold_capture_v2` (migration payments 0016): the entry, the balance and
    its `wallet.funds_added` event (when some comes back), the succeeded payment, its
    `payment.succeeded` event and its audit row. A frozen wallet is refused (`WalletInactive`)."""
    transition(payment, S.SUCCEEDED, action="capture")  # refuses a payment that can't succeed from here
    events = [new_pk(OutboxEvent), new_pk(OutboxEvent)]  # wallet.funds_added, payment.succeeded
    updated_at, _balance = engine.call(
        _WALLET_HOLD_CAPTURE_SQL,
        [
            payment.pk,
            amount,
            new_pk(JournalEntry),
            new_pk(LedgerAccount),  # the system accounts' ids, if this is the currency's first capture
            new_pk(LedgerAccount),
            events,
            *engine.audit_args(audit_context(actor=actor)),
        ],
    )
    hand_over_on_commit(events if payment.amount > amount else events[1:])
    payment.amount_captured = amount
    payment.pending_operation = Op.NONE
    payment.next_attempt_at = None
    payment.updated_at = updated_at
    wallet_cache.bump_on_commit(wallet_ids=[payment.wallet_id], user_ids=[payment.owner_id])
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])


def release_wallet_hold(*, actor: Actor, payment: Payment) -> None:
    """Gives the held amount back to the wallet and cancels the payment, in one call of
    `payment_wallet_hold_release_v2` (migration payments 0016): the entry, the balance and its
    `wallet.funds_added` event, the canceled payment (with its in-memory `metadata`, where a
    cancel's reason is), its `payment.canceled` event and its audit row. A frozen wallet is
    refused (`WalletInactive`)."""
    transition(payment, S.CANCELED, action="cancel")  # refuses a payment that can't be canceled
    events = [new_pk(OutboxEvent), new_pk(OutboxEvent)]  # wallet.funds_added, payment.canceled
    updated_at, _balance = engine.call(
        _WALLET_HOLD_RELEASE_SQL,
        [
            payment.pk,
            json.dumps(payment.metadata),
            new_pk(JournalEntry),
            new_pk(LedgerAccount),  # the holds account's id (it exists: the hold posted to it)
            events,
            *engine.audit_args(audit_context(actor=actor)),
        ],
    )
    hand_over_on_commit(events)
    payment.pending_operation = Op.NONE
    payment.next_attempt_at = None
    payment.updated_at = updated_at
    wallet_cache.bump_on_commit(wallet_ids=[payment.wallet_id], user_ids=[payment.owner_id])
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])


def complete_refund(*, actor: Actor, payment: Payment, refund: Refund) -> None:
    """Completes a pending refund in one call: `payment_card_refund_v2` for a card payment (the
    revenue goes back to the gateway's clearing account), `payment_wallet_refund_v2` for a wallet
    payment (back into the wallet, even a frozen one: freezing stops money leaving, and a refund
    has nowhere else to go). Either writes the entry, the succeeded refund, the payment's refunded
    amount and status, its `payment.refunded` event and its audit row (and the wallet's balance
    and `wallet.funds_added` event)."""
    target = S.REFUNDED if payment.amount_refunded + refund.amount == payment.amount_captured else S.SUCCEEDED
    transition(payment, target, action="refund")  # refuses a payment that can't be refunded
    who = engine.audit_args(audit_context(actor=actor))
    if payment.method_type == Payment.MethodType.CARD:
        events = [new_pk(OutboxEvent)]  # payment.refunded
        status, refunded, updated_at = engine.call(
            _CARD_REFUND_SQL,
            [
                refund.pk,
                refund.gateway_reference,
                new_pk(JournalEntry),
                new_pk(LedgerAccount),  # the system accounts' ids, if this is the currency's first refund
                new_pk(LedgerAccount),
                events[0],
                *who,
            ],
        )
    else:
        events = [new_pk(OutboxEvent), new_pk(OutboxEvent)]  # wallet.funds_added, payment.refunded
        status, refunded, updated_at = engine.call(
            _WALLET_REFUND_SQL,
            [refund.pk, new_pk(JournalEntry), new_pk(LedgerAccount), events, *who],
        )
        wallet_cache.bump_on_commit(wallet_ids=[payment.wallet_id], user_ids=[payment.owner_id])
    hand_over_on_commit(events)
    refund.status = Refund.Status.SUCCEEDED
    refund.updated_at = updated_at
    payment.status, payment.amount_refunded, payment.updated_at = status, refunded, updated_at
    payment.pending_operation = Op.NONE
    payment.next_attempt_at = None
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])


def open_review(*, actor: Actor, payment: Payment, reasons: list[str]) -> None:
    Review.objects.create(payment=payment, reasons=reasons)
    payment.risk_reasons = reasons
    payment_move(actor=actor, payment=payment, to=S.IN_REVIEW, action="hold", event="payment.review_opened")
