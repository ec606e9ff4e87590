"""Wallet reads, scoped to their owner: another user's wallet is a 404, exactly like a missing one."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import User
from apps.core.ids import has_prefix
from apps.core.pagination import Page, PageParams, paginate
from apps.wallets import cache
from apps.wallets.errors import WalletNotFound
from apps.wallets.models import Transaction, Wallet


def _owned_wallets(*, user: User) -> QuerySet[Wallet]:
    return Wallet.objects.filter(user=user)


def wallets_of_user(*, user_id: str) -> QuerySet[Wallet]:
    """Every wallet of the user, by currency: for staff reads (no cache, no principal check)."""
    return Wallet.objects.filter(user_id=user_id).order_by("currency")


def wallet_list(*, user: User, params: PageParams) -> Page[Wallet]:
    page = cache.read_through(
        scope=cache.user_scope(user.pk),
        key=f"list:{params.cache_key}",
        load=lambda: paginate(_owned_wallets(user=user), params),
    )
    # A page is never None (read_through stores and returns what `load` gave); typed for mypy.
    return page if page is not None else paginate(_owned_wallets(user=user), params)


def wallet_get(*, user: User, wallet_id: str, param: str | None = None) -> Wallet:
    """The user's wallet, from the cache when it is there; `param` names the input on a 404."""
    if not has_prefix(wallet_id, "wal"):
        raise WalletNotFound(f"No such wallet: '{str(wallet_id)[:64]}'", param=param)
    wallet = cache.read_through(
        scope=cache.wallet_scope(wallet_id),
        key="row",
        load=lambda: Wallet.objects.filter(pk=wallet_id).first(),
    )
    if wallet is None or wallet.user_id != user.pk:
        raise WalletNotFound(f"No such wallet: '{wallet_id}'", param=param)
    return wallet


def wallet_transactions(*, user: User, wallet_id: str) -> QuerySet[Transaction]:
    """Every deposit and transfer in or out of the user's wallet (paginate newest first)."""
    wallet = wallet_get(user=user, wallet_id=wallet_id)
    return Transaction.objects.filter(Q(source_wallet_id=wallet.pk) | Q(destination_wallet_id=wallet.pk))


def wallet_count() -> int:
    return Wallet.objects.count()


def wallet_cached_balances(*, after_id: str, limit: int) -> list[tuple[str, str, int]]:
    """(wallet id, ledger account id, cached balance) of up to `limit` wallets after `after_id`."""
    return list(
        Wallet.objects.filter(pk__gt=after_id)
        .order_by("pk")
        .values_list("pk", "ledger_account_id", "balance")[:limit]
    )


def deposits_to_reconcile(*, older_than: timedelta) -> list[str]:
    """Pending deposits nobody is coming back for, oldest first: marked for reconciliation (a lost
    answer, a settle that failed), or past the grace period (DEPOSIT_STUCK_AFTER_SECONDS, and at
    least `older_than`) with no step under way and no retry due (a crash, a retry lost with the
    broker)."""
    now = timezone.now()
    cutoff = now - max(older_than, timedelta(seconds=settings.DEPOSIT_STUCK_AFTER_SECONDS))
    marked = ~Q(reconcile_reason="") & Q(updated_at__lte=now - older_than)
    no_retry_due = Q(next_attempt_at__isnull=True, updated_at__lte=cutoff) | Q(next_attempt_at__lte=cutoff)
    return list(
        Transaction.objects.filter(marked | no_retry_due, type=Transaction.Type.DEPOSIT, status="pending")
        .order_by("created_at")
        .values_list("pk", flat=True)
    )
