"""Deposits held for review: the hook to the risk rules and the review queue, and the decision's
effect on the deposit.

The rules (`apps.payments.risk`: amount, the owner's velocity over payments and deposits) and the
review queue (`apps.payments.models.Review`, decided by `apps.payments.services.review_decide`)
live above wallets, which imports neither: payments registers its policy here at start-up
(`apps.payments.apps`), as balance checks register with the ledger. Without one, deposits are
refused (fail closed), never taken unassessed.

A held deposit: at start the policy's reasons are kept on it (`risk_reasons`), so the gateway only
authorizes; the settlement then puts it `in_review` (nothing credited) and opens its review. A
reviewer's decision (`deposit_decided`, in the decision's transaction) leaves it `pending` with
the gateway step to do (`capture` or `void`), which `apps.wallets.deposits.deposit_run` performs
and settles like any other step: captured, the wallet is credited; voided, the deposit fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from apps.wallets.errors import DepositNotFound
from apps.wallets.locks import lock_transaction, lock_wallets
from apps.wallets.models import Transaction, Wallet

IN_REVIEW = Transaction.Status.IN_REVIEW


@dataclass(frozen=True)
class DepositReviewPolicy:
    # (owner, amount) -> why to hold the deposit (empty: don't), judged before the gateway
    assess: Callable[..., list[str]]
    # (deposit, reasons): opens its review; called in the settlement's transaction
    open_review: Callable[..., Any]


_policy: DepositReviewPolicy | None = None


def register_deposit_review_policy(policy: DepositReviewPolicy) -> None:
    global _policy
    _policy = policy


def deposit_review_policy() -> DepositReviewPolicy:
    if _policy is None:
        raise ImproperlyConfigured("No deposit review policy is registered: deposits can't be risk-assessed.")
    return _policy


def lock_deposit(transaction_id: str) -> tuple[Wallet, Transaction]:
    """Locks a deposit's wallet, then the deposit (the wallets' lock order). Call in a transaction."""
    wallet_id = (
        Transaction.objects.filter(pk=transaction_id, type=Transaction.Type.DEPOSIT)
        .values_list("destination_wallet_id", flat=True)
        .first()
    )
    if wallet_id is None:
        raise DepositNotFound(f"No such deposit: '{transaction_id}'")
    wallet = lock_wallets([wallet_id])[wallet_id]
    return wallet, lock_transaction(transaction_id)


def deposit_decided(*, txn: Transaction, approve: bool) -> Transaction:
    """A reviewer decided the locked `in_review` deposit: it waits, `pending`, for the gateway to
    capture (approved) or void (denied) its authorization. Call in the decision's transaction."""
    if txn.status != IN_REVIEW:
        raise ValueError(f"deposit {txn.pk} is {txn.status}, not in review")
    txn.status = Transaction.Status.PENDING
    txn.pending_operation = Transaction.Operation.CAPTURE if approve else Transaction.Operation.VOID
    txn.attempts = 0
    txn.next_attempt_at = None
    txn.save(update_fields=["status", "pending_operation", "attempts", "next_attempt_at", "updated_at"])
    return txn
