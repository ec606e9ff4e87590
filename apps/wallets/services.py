"""Every write to wallets: creation and freezing here; transfers (`apps.wallets.transfers`, one
PostgreSQL function call each) and deposits (`apps.wallets.deposits`, steps around the gateway
call) re-exported.

Each service owns one durable transaction in which it locks (apps.wallets.locks), checks, writes
the change, its audit row and its outbox events; cache invalidation runs after commit.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.outbox import emit_event
from apps.ledger.models import LedgerAccount
from apps.ledger.services import ledger_account_create
from apps.wallets import cache
from apps.wallets.deposit_settlement import deposit_settle, wallet_deposit_settle
from apps.wallets.deposits import (
    deposit_reconcile,
    deposit_run,
    reconcile_deposits,
    wallet_deposit,
    wallet_deposit_start,
)
from apps.wallets.errors import (
    NoteRequired,
    StaffOnly,
    WalletExists,
    WalletNotFound,
)
from apps.wallets.locks import lock_wallets
from apps.wallets.models import FREEZE_PERMISSION, Wallet
from apps.wallets.transfers import TransferRequest, wallet_transfer, wallet_transfer_batch

__all__ = [
    "deposit_reconcile",
    "deposit_run",
    "deposit_settle",
    "reconcile_deposits",
    "wallet_create",
    "wallet_deposit",
    "wallet_deposit_settle",
    "wallet_deposit_start",
    "wallet_freeze",
    "TransferRequest",
    "wallet_transfer",
    "wallet_transfer_batch",
    "wallet_unfreeze",
]

logger = logging.getLogger(__name__)


def _unique_violation(exc: IntegrityError, constraint: str) -> bool:
    diag = getattr(exc.__cause__, "diag", None)  # PostgreSQL names the constraint
    return diag is not None and diag.constraint_name == constraint


@transaction.atomic(durable=True)
def wallet_create(*, actor: Actor, user: User, currency: str) -> Wallet:
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


def _set_status(*, actor: Actor, wallet_id: str, status: str, note: str) -> Wallet:
    if not (getattr(actor, "is_staff", False) and actor.has_perm(FREEZE_PERMISSION)):  # type: ignore[union-attr]
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
def wallet_freeze(*, actor: Actor, wallet_id: str, note: str) -> Wallet:
    """Staff only: the wallet can no longer send or receive. `note` (why) goes to the audit trail."""
    return _set_status(actor=actor, wallet_id=wallet_id, status=Wallet.Status.FROZEN, note=note)


@transaction.atomic(durable=True)
def wallet_unfreeze(*, actor: Actor, wallet_id: str, note: str) -> Wallet:
    return _set_status(actor=actor, wallet_id=wallet_id, status=Wallet.Status.ACTIVE, note=note)
