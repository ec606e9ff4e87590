"""Settling a deposit: the gateway's answer (or error) applied to the locked pending deposit, once.

Step 3 of a deposit (apps.wallets.deposits): one durable transaction that locks the wallet, then
the transaction (apps.wallets.locks), and credits the wallet with its journal entry (one call of
the money engine's `wallet_deposit_credit_v2`, apps.wallets.engine), fails the
deposit, holds it `in_review` (a deposit the risk rules flagged, only authorized: nothing is
credited and its review is opened), or schedules the worker's next attempt; after the last one
the work is dead-lettered.
A deposit no longer pending is returned unchanged, so a late or repeated settle moves nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_context, audit_record
from apps.core.actors import Actor
from apps.core.dead_letters import dead_letter_record
from apps.core.deferred import backoff_delay, enqueue
from apps.core.ids import new_pk
from apps.core.models import OutboxEvent
from apps.core.outbox import emit_event, hand_over_on_commit
from apps.gateways import GatewayError, GatewayResult, GatewayRetryableError
from apps.gateways.calls import GatewayExchange
from apps.ledger.models import JournalEntry, LedgerAccount
from apps.wallets import cache, engine
from apps.wallets.deposits_review import deposit_review_policy
from apps.wallets.locks import lock_transaction, lock_wallets
from apps.wallets.models import Transaction, Wallet
from apps.wallets.payloads import transaction_payload

logger = logging.getLogger(__name__)

PENDING = Transaction.Status.PENDING
DEAD_LETTER_KIND = "deposit_charge"
_CREDIT_EVENTS = 2  # wallet.funds_added, transaction.completed
# The last eight parameters: engine.audit_args.
_CREDIT_SQL = "SELECT * FROM wallet_deposit_credit_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
UNAVAILABLE = GatewayResult(
    status="failed",
    failure_code="gateway_unavailable",
    failure_message="The card gateway is unavailable; nothing was charged. Try again later.",
)


@transaction.atomic(durable=True)
def deposit_settle(
    *,
    actor: Actor,
    transaction_id: str,
    outcome: GatewayResult | GatewayError,
    exchanges: Sequence[GatewayExchange] = (),
) -> Transaction:
    """Applies one gateway answer, or error, to the locked pending deposit, once; the calls that
    led to it (`exchanges`) are recorded in the same transaction.

    A retryable error schedules the next attempt (or, after the last, dead-letters the work and
    fails the deposit with `gateway_unavailable`); any other error fails it with its code.
    """
    wallet, txn = _lock_deposit(transaction_id)
    for exchange in exchanges:
        exchange.record()
    if txn.status != PENDING:
        return txn
    if isinstance(outcome, GatewayRetryableError):
        return _schedule_retry(actor=actor, wallet=wallet, txn=txn, error=outcome)
    if isinstance(outcome, GatewayError):
        outcome = GatewayResult(
            status="failed", failure_code=outcome.code, failure_message=str(outcome)[:500]
        )
    return _apply_result(actor=actor, wallet=wallet, txn=txn, result=outcome)


@transaction.atomic(durable=True)
def wallet_deposit_settle(*, actor: Actor, transaction_id: str, result: GatewayResult) -> Transaction:
    """Applies the gateway's answer to a pending deposit, once.

    A charge credits the wallet (even one frozen since the deposit started: the customer's card
    was charged, so the money is theirs; freezing stops it leaving). Anything else fails the
    transaction with the gateway's failure_code and moves nothing. Settling a deposit that is no
    longer pending changes nothing, so a late or repeated settle (reconciliation) is harmless.
    """
    wallet, txn = _lock_deposit(transaction_id)
    if txn.status != PENDING:
        return txn
    return _apply_result(actor=actor, wallet=wallet, txn=txn, result=result)


def _lock_deposit(transaction_id: str) -> tuple[Wallet, Transaction]:
    wallet_id = Transaction.objects.values_list("destination_wallet_id", flat=True).get(pk=transaction_id)
    wallet = lock_wallets([wallet_id])[wallet_id]
    return wallet, lock_transaction(transaction_id)


def _apply_result(*, actor: Actor, wallet: Wallet, txn: Transaction, result: GatewayResult) -> Transaction:
    txn.gateway_reference = (result.reference or txn.gateway_reference)[:255]
    txn.next_attempt_at = None
    # only a pending deposit needs its card token (to retry); bandit B105: clearing it, not a password
    txn.payment_method_token = ""  # nosec B105
    if result.status == "authorized" and txn.risk_reasons and not txn.pending_operation:
        return _deposit_hold(actor=actor, wallet=wallet, txn=txn)
    if result.status != "captured":
        return _deposit_fail(actor=actor, txn=txn, result=result)

    return _deposit_credit(actor=actor, wallet=wallet, txn=txn)


def _deposit_credit(*, actor: Actor, wallet: Wallet, txn: Transaction) -> Transaction:
    """Credits the captured deposit in one call of `wallet_deposit_credit_v2` (migration wallets
    0008, through the shared wallet leg `wallet_post_v1`): the entry and postings (gateway clearing -> wallet), the balance, the completed
    transaction, its `wallet.funds_added` and `transaction.completed` events and its audit row."""
    entry, events = new_pk(JournalEntry), [new_pk(OutboxEvent) for _ in range(_CREDIT_EVENTS)]
    updated_at, _balance, wallet_user = engine.call(
        _CREDIT_SQL,
        [
            txn.pk,
            txn.gateway_reference,
            entry,
            new_pk(LedgerAccount),  # the clearing account's id, if this is the currency's first deposit
            events,
            *engine.audit_args(audit_context(actor=actor)),
        ],
    )
    hand_over_on_commit(events)
    cache.bump_on_commit(wallet_ids=[wallet.pk], user_ids=[wallet_user])
    txn.status = Transaction.Status.COMPLETED
    txn.journal_entry_id = entry
    txn.updated_at = updated_at
    return txn


def _deposit_hold(*, actor: Actor, wallet: Wallet, txn: Transaction) -> Transaction:
    """Authorized, held for review: nothing is credited (no entry, no balance) until a reviewer
    approves; the deposit joins the review queue."""
    txn.status = Transaction.Status.IN_REVIEW
    txn.save(
        update_fields=["status", "gateway_reference", "next_attempt_at", "payment_method_token", "updated_at"]
    )
    deposit_review_policy().open_review(deposit=txn, reasons=list(txn.risk_reasons))
    emit_event(event_type="transaction.in_review", aggregate=txn, payload=transaction_payload(txn))
    audit_record(
        actor=actor,
        action="wallet.deposit.hold",
        entity_type="transaction",
        entity_id=txn.pk,
        before={"status": PENDING},
        after={
            "status": txn.status,
            "risk_reasons": list(txn.risk_reasons),
            "wallet_balance": wallet.balance,
        },
    )
    cache.bump_on_commit(wallet_ids=[wallet.pk], user_ids=[wallet.user_id])
    return txn


def _deposit_fail(*, actor: Actor, txn: Transaction, result: GatewayResult) -> Transaction:
    txn.status = Transaction.Status.FAILED
    txn.failure_code = result.failure_code or "gateway_declined"
    txn.failure_message = (result.failure_message or "The payment method was declined.")[:500]
    txn.save(
        update_fields=[
            "status",
            "failure_code",
            "failure_message",
            "gateway_reference",
            "next_attempt_at",
            "payment_method_token",
            "updated_at",
        ]
    )
    emit_event(event_type="transaction.failed", aggregate=txn, payload=transaction_payload(txn))
    audit_record(
        actor=actor,
        action="wallet.deposit.fail",
        entity_type="transaction",
        entity_id=txn.pk,
        before={"status": PENDING},
        after={"status": txn.status, "failure_code": txn.failure_code},
    )
    return txn


def _schedule_retry(
    *, actor: Actor, wallet: Wallet, txn: Transaction, error: GatewayRetryableError
) -> Transaction:
    txn.attempts += 1
    if txn.attempts >= settings.DEPOSIT_RETRY_MAX_ATTEMPTS:
        dead_letter_record(
            kind=DEAD_LETTER_KIND,
            reference=txn.pk,
            reason=f"deposit charge failed {txn.attempts} times: {error.code}",
            payload={"transaction": txn.pk, "wallet": wallet.pk, "last_error": str(error)},
            attempts=txn.attempts,
        )
        txn.save(update_fields=["attempts", "updated_at"])
        return _apply_result(actor=actor, wallet=wallet, txn=txn, result=UNAVAILABLE)
    delay = backoff_delay(
        attempt=txn.attempts,
        base=settings.DEPOSIT_RETRY_BASE_SECONDS,
        maximum=settings.DEPOSIT_RETRY_MAX_SECONDS,
    )
    txn.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    txn.save(update_fields=["attempts", "next_attempt_at", "updated_at"])
    logger.warning("deposit %s: gateway attempt %d failed (%s), retrying", txn.pk, txn.attempts, error.code)
    transaction_id = txn.pk
    transaction.on_commit(lambda: _enqueue_retry(transaction_id, delay))
    return txn


def _enqueue_retry(transaction_id: str, delay: float) -> None:
    from apps.wallets import tasks

    enqueue(tasks.retry_deposit, transaction_id, fallback="reconcile_deposits", countdown=delay)
