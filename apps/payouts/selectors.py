"""Payout reads, scoped to their owner (the wallet's user): another user's payout is a 404."""

from __future__ import annotations

from django.db.models import QuerySet, Sum

from apps.accounts.models import User
from apps.core.ids import has_prefix
from apps.payouts.errors import PayoutNotFound
from apps.payouts.models import Payout
from apps.wallets.selectors import wallet_get


def _owned(*, user: User) -> QuerySet[Payout]:
    return Payout.objects.filter(wallet__user=user)


def payout_list(*, user: User, wallet_id: str) -> QuerySet[Payout]:
    """The payouts of the user's wallet (paginate newest first); another's wallet: WalletNotFound."""
    wallet = wallet_get(user=user, wallet_id=wallet_id)
    return Payout.objects.filter(wallet_id=wallet.pk)


def payout_get(*, user: User, payout_id: str) -> Payout:
    if not has_prefix(payout_id, "po"):
        raise PayoutNotFound(f"No such payout: '{str(payout_id)[:64]}'")
    payout = _owned(user=user).filter(pk=payout_id).first()
    if payout is None:
        raise PayoutNotFound(f"No such payout: '{payout_id}'")
    return payout


def payouts_in_transit_by_currency() -> dict[str, int]:
    """Per currency, the amount of the open payouts (pending or in transit): what the
    `payouts_in_transit` ledger account must hold (`manage.py verify_ledger`)."""
    rows = (
        Payout.objects.filter(status__in=Payout.OPEN_STATUSES)
        .values("currency")
        .annotate(total=Sum("amount"))
        .values_list("currency", "total")
    )
    return {currency: int(total) for currency, total in rows}
