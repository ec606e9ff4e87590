"""Every write to wallets: creation, deposits, transfers, freezing.

Each service owns one durable transaction in which it locks (apps.wallets.locks), checks, moves
the cached balances with F() expressions, posts one balanced journal entry, writes the audit row
and the outbox events; cache invalidation runs after commit. The one exception is
`wallet_deposit`, which must call the card gateway outside any transaction and so is two durable
steps around the network call.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, F, When

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.outbox import emit_event, emit_events
from apps.core.pci import reject_card_data
from apps.gateways import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayRetryableError,
    get_gateway,
)
from apps.ledger.models import JournalEntry, LedgerAccount, SystemAccount
from apps.ledger.services import ledger_account_create, ledger_post, ledger_system_account
from apps.wallets import cache
from apps.wallets.errors import (
    CurrencyMismatch,
    InsufficientFunds,
    NoteRequired,
    SameWallet,
    StaffOnly,
    WalletExists,
    WalletInactive,
    WalletNotFound,
)
from apps.wallets.locks import lock_transaction, lock_wallets, retry_on_lock_conflict
from apps.wallets.models import Transaction, Wallet

logger = logging.getLogger(__name__)

# Attempts at the gateway within one deposit request; every attempt carries the same idempotency
# key (the transaction id), so a retry can never charge twice.
GATEWAY_ATTEMPTS = 3
GATEWAY_BACKOFF_SECONDS = 0.05
_UNAVAILABLE = GatewayResult(
    status="failed",
    failure_code="gateway_unavailable",
    failure_message="The card gateway is unavailable; nothing was charged. Try again later.",
)


def _unique_violation(exc: IntegrityError, constraint: str) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None:  # PostgreSQL names the constraint
        return diag.constraint_name == constraint
    return str(exc).startswith("UNIQUE constraint failed")  # SQLite only says which columns


@transaction.atomic(durable=True)
def wallet_create(*, actor: Any, user: User, currency: str) -> Wallet:
    """Opens the user's wallet in `currency`; a second one in the same currency is a 409.

    No check-then-insert: the unique (user, currency) index decides, so two racing requests end
    with one wallet and one `wallet_exists`.
    """
    account = ledger_account_create(kind=LedgerAccount.Kind.WALLET, currency=currency)
    try:
        wallet = Wallet.objects.create(user=user, currency=currency, ledger_account=account)
    except IntegrityError as exc:
        if _unique_violation(exc, "wallet_one_per_user_currency"):
            raise WalletExists(f"You already have a {currency} wallet.", param="currency")
        raise
    emit_event(
        event_type="wallet.created",
        aggregate=wallet,
        payload={"wallet": wallet.pk, "user": user.pk, "currency": currency},
    )
    audit_record(
        actor=actor,
        action="wallet.create",
        entity_type="wallet",
        entity_id=wallet.pk,
        after={"user": user.pk, "currency": currency, "balance": 0, "status": wallet.status},
    )
    cache.bump_on_commit(wallet_ids=[], user_ids=[user.pk])
    return wallet


def wallet_deposit(
    *, actor: Any, user: User, wallet_id: str, amount: int, payment_method: str, currency: str | None = None
) -> Transaction:
    """Charges `payment_method` and credits the user's wallet: a `deposit` transaction.

    1. `wallet_deposit_start` records it `pending` (and commits: it is durable, so calling this
       inside a transaction fails before any money moves, keeping the gateway out of transactions).
    2. The gateway is called with no transaction open and the transaction id as idempotency key.
    3. `wallet_deposit_settle` completes it (balance, ledger entry) or fails it with the
       gateway's failure_code. A decline is a normal outcome, not an error.

    Retryable gateway errors are retried a few times right here. If they persist the deposit
    fails with `gateway_unavailable`; a card the gateway only authorizes (risk review) is voided
    and the deposit fails with `card_review_required`; if the answer was lost, the gateway is asked what happened
    (`retrieve`), and if it cannot say either, the deposit fails with `gateway_outcome_unknown`
    and is logged for reconciliation by hand (there is no automatic deposit reconciliation yet).
    """
    reject_card_data({"payment_method": payment_method})
    txn = wallet_deposit_start(
        actor=actor,
        user=user,
        wallet_id=wallet_id,
        amount=amount,
        currency=currency,
    )
    result = _charge(txn=txn, token=payment_method)
    return wallet_deposit_settle(actor=actor, transaction_id=txn.pk, result=result)


def _charge(*, txn: Transaction, token: str) -> GatewayResult:
    gateway = get_gateway()
    for attempt in range(1, GATEWAY_ATTEMPTS + 1):
        try:
            result = gateway.authorize(
                amount=txn.amount, currency=txn.currency, token=token, idempotency_key=txn.pk, capture=True
            )
        except GatewayRetryableError:
            logger.warning("deposit %s: gateway attempt %d failed, retryable", txn.pk, attempt)
            time.sleep(GATEWAY_BACKOFF_SECONDS * attempt)
            continue
        except GatewayResponseLost:
            return _retrieve(gateway=gateway, txn=txn)
        except GatewayError as exc:
            return GatewayResult(status="failed", failure_code=exc.code, failure_message=str(exc)[:500])
        if result.status == "authorized":
            return _release_hold(gateway=gateway, txn=txn, held=result)
        return result
    return _UNAVAILABLE


def _release_hold(*, gateway: Any, txn: Transaction, held: GatewayResult) -> GatewayResult:
    """The gateway only authorized (it wants a risk review): a deposit is all or nothing, so the
    hold is voided rather than left on the customer's card, and the deposit fails."""
    try:
        gateway.void(reference=held.reference, idempotency_key=f"{txn.pk}:void")
    except GatewayError:
        logger.error("deposit %s: could not void authorization %s", txn.pk, held.reference, exc_info=True)
    return GatewayResult(
        status="failed",
        reference=held.reference,
        failure_code="card_review_required",
        failure_message="The card issuer asked for a review; use another payment method for deposits.",
    )


def _retrieve(*, gateway: Any, txn: Transaction) -> GatewayResult:
    try:
        known = gateway.retrieve(idempotency_key=txn.pk)
    except GatewayError:
        logger.error("deposit %s: gateway outcome unknown; reconcile by hand", txn.pk)
        return GatewayResult(
            status="failed",
            failure_code="gateway_outcome_unknown",
            failure_message="The card gateway did not confirm the charge; contact support if it appears.",
        )
    if known is None:  # the gateway never charged it: nothing to credit
        return _UNAVAILABLE
    return known


@transaction.atomic(durable=True)
def wallet_deposit_start(
    *, actor: Any, user: User, wallet_id: str, amount: int, currency: str | None = None
) -> Transaction:
    """Records a pending deposit into the user's active wallet (nothing is charged yet)."""
    wallet = Wallet.objects.filter(pk=wallet_id, user=user).first()
    if wallet is None:
        raise WalletNotFound(f"No such wallet: '{wallet_id}'")
    if currency is not None and currency != wallet.currency:
        raise CurrencyMismatch(f"This wallet holds {wallet.currency}, not {currency}.", param="currency")
    if wallet.status != Wallet.Status.ACTIVE:
        raise WalletInactive()
    txn = Transaction.objects.create(
        type=Transaction.Type.DEPOSIT,
        status=Transaction.Status.PENDING,
        amount=amount,
        currency=wallet.currency,
        destination_wallet=wallet,
    )
    audit_record(
        actor=actor,
        action="wallet.deposit.start",
        entity_type="transaction",
        entity_id=txn.pk,
        after={"wallet": wallet.pk, "amount": amount, "currency": wallet.currency, "status": txn.status},
    )
    return txn


@transaction.atomic(durable=True)
def wallet_deposit_settle(*, actor: Any, transaction_id: str, result: GatewayResult) -> Transaction:
    """Applies the gateway's answer to a pending deposit, once.

    A charge credits the wallet (even one frozen since the deposit started: the customer's card
    was charged, so the money is theirs; freezing stops it leaving). Anything else fails the
    transaction with the gateway's failure_code and moves nothing. Settling a deposit that is no
    longer pending changes nothing, so a late or repeated settle (reconciliation) is harmless.
    """
    wallet_id = Transaction.objects.values_list("destination_wallet_id", flat=True).get(pk=transaction_id)
    wallet = lock_wallets([wallet_id])[wallet_id]
    txn = lock_transaction(transaction_id)
    if txn.status != Transaction.Status.PENDING:
        return txn
    txn.gateway_reference = result.reference[:255]
    if result.status != "captured":
        return _deposit_fail(actor=actor, txn=txn, result=result)

    clearing = ledger_system_account(code=SystemAccount.GATEWAY_CLEARING, currency=txn.currency)
    entry = ledger_post(
        kind="deposit",
        memo=f"deposit {txn.pk}",
        lines=[(clearing, -txn.amount), (wallet.ledger_account, txn.amount)],
    )
    Wallet.objects.filter(pk=wallet.pk).update(balance=F("balance") + txn.amount)
    txn.status = Transaction.Status.COMPLETED
    txn.journal_entry = entry
    txn.save(update_fields=["status", "journal_entry", "gateway_reference", "updated_at"])
    balance = wallet.balance + txn.amount
    funds_added = {
        "wallet": wallet.pk,
        "transaction": txn.pk,
        "amount": txn.amount,
        "currency": txn.currency,
        "balance": balance,
    }
    emit_events(
        events=[
            ("wallet.funds_added", wallet, funds_added),
            ("transaction.completed", txn, _transaction_payload(txn)),
        ]
    )
    audit_record(
        actor=actor,
        action="wallet.deposit.complete",
        entity_type="transaction",
        entity_id=txn.pk,
        before={"status": Transaction.Status.PENDING, "wallet_balance": wallet.balance},
        after={"status": txn.status, "wallet_balance": balance, "journal_entry": entry.pk},
    )
    cache.bump_on_commit(wallet_ids=[wallet.pk], user_ids=[wallet.user_id])
    return txn


def _deposit_fail(*, actor: Any, txn: Transaction, result: GatewayResult) -> Transaction:
    txn.status = Transaction.Status.FAILED
    txn.failure_code = result.failure_code or "gateway_declined"
    txn.failure_message = (result.failure_message or "The payment method was declined.")[:500]
    txn.save(update_fields=["status", "failure_code", "failure_message", "gateway_reference", "updated_at"])
    emit_event(event_type="transaction.failed", aggregate=txn, payload=_transaction_payload(txn))
    audit_record(
        actor=actor,
        action="wallet.deposit.fail",
        entity_type="transaction",
        entity_id=txn.pk,
        before={"status": Transaction.Status.PENDING},
        after={"status": txn.status, "failure_code": txn.failure_code},
    )
    return txn


@retry_on_lock_conflict()
@transaction.atomic(durable=True)
def wallet_transfer(
    *,
    actor: Any,
    user: User,
    source_wallet_id: str,
    destination_wallet_id: str,
    amount: int,
    description: str | None = None,
) -> Transaction:
    """Moves `amount` from the user's wallet to any active wallet in the same currency.

    Both rows are locked in id order before anything is read, so concurrent transfers (even
    A→B against B→A) queue instead of deadlocking, and the funds check sees a balance nobody
    else can change until commit. Every refusal is raised before anything is written.
    """
    if source_wallet_id == destination_wallet_id:
        raise SameWallet(param="destination_wallet")
    wallets = lock_wallets([source_wallet_id, destination_wallet_id])
    source = wallets.get(source_wallet_id)
    destination = wallets.get(destination_wallet_id)
    if source is None or source.user_id != user.pk:
        raise WalletNotFound(f"No such wallet: '{source_wallet_id}'", param="source_wallet")
    if destination is None:
        raise WalletNotFound(f"No such wallet: '{destination_wallet_id}'", param="destination_wallet")
    for wallet, param in ((source, "source_wallet"), (destination, "destination_wallet")):
        if wallet.status != Wallet.Status.ACTIVE:
            raise WalletInactive(f"Wallet {wallet.pk} is frozen.", param=param)
    if source.currency != destination.currency:
        raise CurrencyMismatch(
            f"The source wallet holds {source.currency} but the destination holds {destination.currency}.",
            param="destination_wallet",
        )
    if source.balance < amount:
        raise InsufficientFunds(param="amount")

    entry = ledger_post(
        kind="transfer",
        memo=f"transfer {source.pk} -> {destination.pk}",
        lines=[(source.ledger_account, -amount), (destination.ledger_account, amount)],
    )
    # One UPDATE for both rows: a single round trip while the locks are held.
    Wallet.objects.filter(pk__in=[source.pk, destination.pk]).update(
        balance=Case(
            When(pk=source.pk, then=F("balance") - amount),
            When(pk=destination.pk, then=F("balance") + amount),
        )
    )
    txn = Transaction.objects.create(
        type=Transaction.Type.TRANSFER,
        status=Transaction.Status.COMPLETED,
        amount=amount,
        currency=source.currency,
        source_wallet=source,
        destination_wallet=destination,
        description=description,
        journal_entry=entry,
    )
    source_balance, destination_balance = source.balance - amount, destination.balance + amount
    common = {"transaction": txn.pk, "amount": amount, "currency": txn.currency}
    emit_events(
        events=[
            ("wallet.funds_deducted", source, {"wallet": source.pk, **common, "balance": source_balance}),
            (
                "wallet.funds_added",
                destination,
                {"wallet": destination.pk, **common, "balance": destination_balance},
            ),
            ("transaction.completed", txn, _transaction_payload(txn)),
        ]
    )
    # Last: its chain of the audit trail stays locked from here to commit (apps.audit.services).
    audit_record(
        actor=actor,
        action="wallet.transfer",
        entity_type="transaction",
        entity_id=txn.pk,
        before={"source_balance": source.balance, "destination_balance": destination.balance},
        after={
            **common,
            "source_wallet": source.pk,
            "destination_wallet": destination.pk,
            "source_balance": source_balance,
            "destination_balance": destination_balance,
            "journal_entry": entry.pk,
        },
    )
    cache.bump_on_commit(
        wallet_ids=[source.pk, destination.pk], user_ids={source.user_id, destination.user_id}
    )
    return txn


def wallet_post_locked(
    *,
    wallet: Wallet,
    kind: str,
    memo: str,
    lines: list[tuple[LedgerAccount, int]],
    allow_frozen: bool = False,
) -> JournalEntry:
    """Posts an entry in which a wallet takes part, and moves its cached balance to match.

    A building block for other apps' money services (payments), like `ledger_post`: it runs inside
    the caller's transaction, on a wallet the caller has locked with `lock_wallets`. The wallet's
    balance moves by the sum of its own lines. Money leaving needs an active wallet and enough
    funds (checked here, on the locked row, before anything is written); money arriving needs an
    active wallet unless `allow_frozen` (a refund returning the owner's own money).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("wallet_post_locked runs inside the caller's transaction")
    delta = sum(amount for account, amount in lines if account.pk == wallet.ledger_account_id)
    if wallet.status != Wallet.Status.ACTIVE and (delta < 0 or not allow_frozen):
        raise WalletInactive(f"Wallet {wallet.pk} is frozen.", param="payment_method")
    if wallet.balance + delta < 0:
        raise InsufficientFunds(param="amount")
    entry = ledger_post(kind=kind, memo=memo, lines=lines)
    Wallet.objects.filter(pk=wallet.pk).update(balance=F("balance") + delta)
    wallet.balance += delta
    if delta:
        emit_event(
            event_type="wallet.funds_added" if delta > 0 else "wallet.funds_deducted",
            aggregate=wallet,
            payload={
                "wallet": wallet.pk,
                "amount": abs(delta),
                "currency": wallet.currency,
                "balance": wallet.balance,
                "journal_entry": entry.pk,
                "reason": kind,
            },
        )
    cache.bump_on_commit(wallet_ids=[wallet.pk], user_ids=[wallet.user_id])
    return entry


def _transaction_payload(txn: Transaction) -> dict[str, Any]:
    return {
        "transaction": txn.pk,
        "type": txn.type,
        "status": txn.status,
        "amount": txn.amount,
        "currency": txn.currency,
        "source_wallet": txn.source_wallet_id,
        "destination_wallet": txn.destination_wallet_id,
        "failure_code": txn.failure_code,
    }


def _set_status(*, actor: Any, wallet_id: str, status: str, note: str) -> Wallet:
    if not getattr(actor, "is_staff", False):
        raise StaffOnly()
    note = (note or "").strip()
    if not note:
        raise NoteRequired(param="note")
    wallet = lock_wallets([wallet_id]).get(wallet_id)
    if wallet is None:
        raise WalletNotFound(f"No such wallet: '{wallet_id}'")
    if wallet.status == status:
        return wallet
    before = wallet.status
    wallet.status = status
    wallet.save(update_fields=["status"])
    frozen = status == Wallet.Status.FROZEN
    emit_event(
        event_type="wallet.frozen" if frozen else "wallet.unfrozen",
        aggregate=wallet,
        payload={"wallet": wallet.pk, "status": status, "note": note},
    )
    audit_record(
        actor=actor,
        action="wallet.freeze" if frozen else "wallet.unfreeze",
        entity_type="wallet",
        entity_id=wallet.pk,
        before={"status": before},
        after={"status": status, "note": note},
    )
    cache.bump_on_commit(wallet_ids=[wallet.pk], user_ids=[wallet.user_id])
    return wallet


@transaction.atomic(durable=True)
def wallet_freeze(*, actor: Any, wallet_id: str, note: str) -> Wallet:
    """Staff only: the wallet can no longer send or receive. `note` (why) goes to the audit trail."""
    return _set_status(actor=actor, wallet_id=wallet_id, status=Wallet.Status.FROZEN, note=note)


@transaction.atomic(durable=True)
def wallet_unfreeze(*, actor: Any, wallet_id: str, note: str) -> Wallet:
    return _set_status(actor=actor, wallet_id=wallet_id, status=Wallet.Status.ACTIVE, note=note)
