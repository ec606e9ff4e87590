"""Deposits: a card charge that credits the user's wallet, in the same steps as a card payment.

    1. open    (transaction) `wallet_deposit_start`: the deposit `pending`, with its card token
    2. gateway (no transaction, no row locks) `gateway_call`: authorize-and-capture, with the
               transaction id as idempotency key, so any repeat is the same charge at the gateway
    3. settle  (transaction) `deposit_settle`: record the calls (GatewayAttempt, raw log), credit the
               wallet with its journal entry, or fail it

A decline is a normal outcome (the deposit fails with the gateway's failure_code). A card the
gateway only authorizes (risk review) is voided, and the deposit fails with `card_review_required`:
a deposit is all or nothing.

A deposit that trips Paydesk's own risk rules (`apps.wallets.deposits_review`: at or above
DEPOSIT_REVIEW_AMOUNT_THRESHOLD, or over the owner's velocity) is only authorized and held
`in_review`, nothing credited, in the review queue; the reviewer's decision leaves it `pending`
with a capture (approved: then credited) or a void (denied: then failed) to do, performed here
in the same steps, retries and reconciliation as the charge.

A retryable gateway error leaves the deposit `pending` and the worker retries step 2–3
(`apps.wallets.tasks.retry_deposit`, backoff with full jitter); after DEPOSIT_RETRY_MAX_ATTEMPTS it
is dead-lettered and fails with `gateway_unavailable`.

An answer that was lost (GatewayResponseLost), or one that could not be written, is never
guessed: reconciliation asks the gateway what it knows of the deposit's key and settles it once
(`deposit_reconcile`, tried right away after a lost answer; `reconcile_deposits`, run by the beat
task and `manage.py reconcile_deposits`, for whatever is still pending with nobody coming back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.pci import reject_card_data
from apps.gateways import GatewayError, GatewayResponseLost, GatewayResult
from apps.gateways.calls import ChargeSubject, GatewayExchange, gateway_call, not_found_may_be_too_soon
from apps.gateways.payment_methods import payment_method_require_known
from apps.wallets.deposit_settlement import UNAVAILABLE, deposit_settle
from apps.wallets.deposits_review import deposit_review_policy
from apps.wallets.errors import CurrencyMismatch, WalletInactive, WalletNotFound
from apps.wallets.models import Transaction, Wallet
from apps.wallets.selectors import deposits_to_reconcile

logger = logging.getLogger(__name__)

PENDING = Transaction.Status.PENDING


def wallet_deposit(
    *,
    actor: Actor,
    user: User,
    wallet_id: str,
    amount: int,
    payment_method: str,
    currency: str | None = None,
) -> Transaction:
    """Charges `payment_method` and credits the user's wallet: a `deposit` transaction.

    `wallet_deposit_start` is durable, so calling this inside a transaction fails before any money
    moves (the gateway is never called in one). Returns the deposit as stored afterwards: completed
    or failed, or still `pending` while the worker retries or reconciliation settles it.
    """
    reject_card_data({"payment_method": payment_method})
    payment_method_require_known(token=payment_method)
    txn = wallet_deposit_start(
        actor=actor,
        user=user,
        wallet_id=wallet_id,
        amount=amount,
        currency=currency,
        payment_method=payment_method,
    )
    return deposit_run(actor=actor, transaction_id=txn.pk, txn=txn)


@transaction.atomic(durable=True)
def wallet_deposit_start(
    *,
    actor: Actor,
    user: User,
    wallet_id: str,
    amount: int,
    currency: str | None = None,
    payment_method: str = "",
) -> Transaction:
    """Records a pending deposit into the user's active wallet (nothing is charged yet), with the
    risk rules' reasons to hold it for review (then the card will only be authorized).

    The wallet row is locked so that one owner's deposits into it are assessed one at a time (the
    velocity rule counts the ones before)."""
    wallet = Wallet.objects.select_for_update().filter(pk=wallet_id, user=user).first()
    if wallet is None:
        raise WalletNotFound(f"No such wallet: '{wallet_id}'")
    if currency is not None and currency != wallet.currency:
        raise CurrencyMismatch(f"This wallet holds {wallet.currency}, not {currency}.", param="currency")
    if wallet.status != Wallet.Status.ACTIVE:
        raise WalletInactive()
    reasons = deposit_review_policy().assess(owner=user, amount=amount)
    txn = Transaction.objects.create(
        type=Transaction.Type.DEPOSIT,
        status=PENDING,
        amount=amount,
        currency=wallet.currency,
        destination_wallet=wallet,
        gateway=getattr(settings, "PAYMENT_GATEWAY", "simulated"),
        payment_method_token=payment_method,
        risk_reasons=reasons,
    )
    audit_record(
        actor=actor,
        action="wallet.deposit.start",
        entity_type="transaction",
        entity_id=txn.pk,
        after={
            "wallet": wallet.pk,
            "amount": amount,
            "currency": wallet.currency,
            "status": txn.status,
            "risk_reasons": reasons,
        },
    )
    return txn


# --- the gateway step ----------------------------------------------------------------------------


def deposit_run(*, actor: Actor, transaction_id: str, txn: Transaction | None = None) -> Transaction:
    """Performs a pending deposit's charge (outside any transaction) and settles it; the body of
    the worker's retries too. `txn`: the row as the caller has just committed it."""
    txn = txn if txn is not None else Transaction.objects.get(pk=transaction_id)
    if txn.status != PENDING or txn.type != Transaction.Type.DEPOSIT:
        return txn
    if txn.pending_operation:
        return _run_decision(actor=actor, txn=txn)
    held = bool(txn.risk_reasons)  # held for review: authorize only, nothing is captured yet
    exchange = gateway_call(
        subject=_subject(txn),
        operation="authorize",
        idempotency_key=txn.pk,
        call=lambda gateway: gateway.authorize(
            amount=txn.amount,
            currency=txn.currency,
            token=txn.payment_method_token,
            idempotency_key=txn.pk,
            capture=not held,
        ),
    )
    outcome = exchange.outcome
    if isinstance(outcome, GatewayResponseLost):
        logger.warning("deposit %s: the gateway's answer was lost; reconciling", txn.pk)
        exchange.record_alone()
        return deposit_reconcile(actor=actor, transaction_id=txn.pk, reason="response_lost")
    exchanges = [exchange]
    if isinstance(outcome, GatewayResult) and outcome.status == "authorized" and not held:
        outcome = _release_hold(txn=txn, held=outcome, exchanges=exchanges)
    return _settle_or_reconcile(actor=actor, txn=txn, outcome=outcome or UNAVAILABLE, exchanges=exchanges)


def _run_decision(*, actor: Actor, txn: Transaction) -> Transaction:
    """The gateway step a review decision left: capture the held authorization (then the wallet
    is credited) or void it (then the deposit fails `review_denied`). Its key is derived from the
    deposit, so a retry or reconciliation repeats the same call at the gateway."""
    operation = txn.pending_operation
    key = f"{txn.pk}:{operation}"
    reference = txn.gateway_reference
    if operation == Transaction.Operation.CAPTURE:
        exchange = gateway_call(
            subject=_subject(txn),
            operation="capture",
            idempotency_key=key,
            call=lambda gateway: gateway.capture(reference=reference, amount=txn.amount, idempotency_key=key),
        )
    else:
        exchange = gateway_call(
            subject=_subject(txn),
            operation="void",
            idempotency_key=key,
            call=lambda gateway: gateway.void(reference=reference, idempotency_key=key),
        )
    outcome = exchange.outcome
    if isinstance(outcome, GatewayResponseLost) or outcome is None:
        # Never guessed: reconciliation repeats the same (idempotent) call later.
        logger.warning("deposit %s: the gateway's answer to the %s was lost", txn.pk, operation)
        exchange.record_alone()
        deposit_mark_reconcile(transaction_id=txn.pk, reason="response_lost")
        return Transaction.objects.get(pk=txn.pk)
    if isinstance(outcome, GatewayResult) and outcome.status == "voided":
        outcome = GatewayResult(
            status="failed",
            reference=outcome.reference or reference,
            failure_code="review_denied",
            failure_message="A reviewer denied this deposit; the card authorization was voided.",
        )
    return _settle_or_reconcile(actor=actor, txn=txn, outcome=outcome, exchanges=[exchange])


def _settle_or_reconcile(
    *,
    actor: Actor,
    txn: Transaction,
    outcome: GatewayResult | GatewayError,
    exchanges: list[GatewayExchange],
) -> Transaction:
    try:
        deposit_settle(actor=actor, transaction_id=txn.pk, outcome=outcome, exchanges=exchanges)
    except Exception:
        # The gateway answered but the answer could not be written: never guess, reconcile (and
        # keep the trail of the calls, which rolled back with the settlement).
        logger.exception("deposit %s: could not record the gateway's answer", txn.pk)
        for exchange in exchanges:
            exchange.record_alone()
        deposit_mark_reconcile(transaction_id=txn.pk, reason="settle_failed")
    # Read again: a retry run inline (eager tasks) may have moved it on since.
    return Transaction.objects.get(pk=txn.pk)


def _release_hold(
    *, txn: Transaction, held: GatewayResult, exchanges: list[GatewayExchange]
) -> GatewayResult:
    """The gateway only authorized (it wants a risk review): a deposit is all or nothing, so the
    hold is voided rather than left on the customer's card, and the deposit fails. The void's
    exchange joins `exchanges`, recorded by the settlement."""
    voided = gateway_call(
        subject=_subject(txn, reference=held.reference),
        operation="void",
        idempotency_key=f"{txn.pk}:void",
        call=lambda gateway: gateway.void(reference=held.reference, idempotency_key=f"{txn.pk}:void"),
    )
    exchanges.append(voided)
    if isinstance(voided.outcome, GatewayError):
        logger.error("deposit %s: could not void authorization %s", txn.pk, held.reference)
    return GatewayResult(
        status="failed",
        reference=held.reference,
        failure_code="card_review_required",
        failure_message="The card issuer asked for a review; use another payment method for deposits.",
    )


def _subject(txn: Transaction, *, reference: str = "") -> ChargeSubject:
    return ChargeSubject(
        pk=txn.pk,
        gateway=txn.gateway,
        currency=txn.currency,
        amount=txn.amount,
        gateway_reference=reference or txn.gateway_reference,
        operation_amount=txn.amount,
    )


# --- reconciliation ------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def deposit_mark_reconcile(*, transaction_id: str, reason: str) -> None:
    """Notes why a pending deposit waits for reconciliation (no-op once it is settled)."""
    Transaction.objects.filter(pk=transaction_id, status=PENDING).update(
        reconcile_reason=reason[:32], next_attempt_at=None, updated_at=timezone.now()
    )


def deposit_reconcile(*, actor: Actor, transaction_id: str, reason: str = "stuck") -> Transaction:
    """Asks the gateway what it knows of the pending deposit's key and settles it, once.

    Charged: the wallet is credited. Declined: it fails. Only authorized: the hold is voided and
    it fails. Never seen by the gateway: nothing was charged, it fails `gateway_unavailable`
    (except on Stripe within STRIPE_SEARCH_GRACE_SECONDS: its search lags creation). The gateway
    not answering either: it stays pending, marked with `reason`, for the next reconciliation.
    """
    txn = Transaction.objects.get(pk=transaction_id)
    if txn.status != PENDING or txn.type != Transaction.Type.DEPOSIT:
        return txn
    if txn.pending_operation:
        # A reviewer's capture or void whose answer was lost: repeating it (same key) is safe.
        return _run_decision(actor=actor, txn=txn)
    exchange = gateway_call(
        subject=_subject(txn),
        operation="retrieve",
        idempotency_key=txn.pk,
        call=lambda gateway: gateway.retrieve(idempotency_key=txn.pk),
    )
    known = exchange.outcome
    if isinstance(known, GatewayError):
        logger.error("deposit %s: the gateway did not say what happened; left for reconciliation", txn.pk)
        exchange.record_alone()
        deposit_mark_reconcile(transaction_id=txn.pk, reason=reason)
        return Transaction.objects.get(pk=txn.pk)
    exchanges = [exchange]
    if known is None:
        if not_found_may_be_too_soon(gateway=txn.gateway, created_at=txn.created_at):
            exchange.record_alone()
            deposit_mark_reconcile(transaction_id=txn.pk, reason=reason)
            return Transaction.objects.get(pk=txn.pk)
        known = UNAVAILABLE
    elif known.status == "authorized" and not txn.risk_reasons:
        known = _release_hold(txn=txn, held=known, exchanges=exchanges)
    return _settle_or_reconcile(actor=actor, txn=txn, outcome=known, exchanges=exchanges)


@dataclass
class DepositReconciliation:
    """What one `reconcile_deposits` run did: (deposit id, status before, status after) per deposit."""

    changes: list[tuple[str, str, str]] = field(default_factory=list)
    dry_run: bool = False

    @property
    def settled(self) -> int:
        return sum(1 for _, before, after in self.changes if after != before)

    @property
    def left_pending(self) -> int:
        return sum(1 for _, _, after in self.changes if after == PENDING)


def reconcile_deposits(
    *,
    older_than: timedelta = timedelta(0),
    dry_run: bool = False,
    progress: Callable[[int, int], Any] | None = None,
) -> DepositReconciliation:
    """Settles every deposit still pending with nobody coming back for it (the one function behind
    the beat task and `manage.py reconcile_deposits`): each is asked of the gateway and settled
    once; one the gateway cannot answer for stays pending and does not stop the others."""
    report = DepositReconciliation(dry_run=dry_run)
    todo = deposits_to_reconcile(older_than=older_than)
    for done, transaction_id in enumerate(todo, start=1):
        if dry_run:
            report.changes.append((transaction_id, PENDING, PENDING))
        else:
            try:
                after = deposit_reconcile(actor=None, transaction_id=transaction_id).status
            except Exception:
                logger.exception("deposit %s: reconciliation failed", transaction_id)
                after = PENDING
            report.changes.append((transaction_id, PENDING, after))
        if progress is not None:
            progress(done, len(todo))
    return report
