"""Payout reads, scoped to their owner (the wallet's user): another user's payout is a 404."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Min, QuerySet, Sum

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


def payout_status_counts(*, since: datetime) -> dict[str, int]:
    """Staff's view (no owner scoping: the back office's dashboard): payouts created since `since`
    per status, every status present (0 when none), in lifecycle order."""
    counts = dict(
        Payout.objects.filter(created_at__gte=since)
        .values("status")
        .annotate(count=Count("pk"))
        .order_by()
        .values_list("status", "count")
    )
    return {status: int(counts.get(status, 0)) for status in Payout.Status.values}


def payouts_held_for_review() -> tuple[int, datetime | None]:
    """Staff's view: how many payouts wait for a reviewer's decision, and since when the oldest has."""
    held = Payout.objects.filter(review_status=Payout.ReviewStatus.OPEN).aggregate(
        size=Count("pk"), oldest=Min("created_at")
    )
    return int(held["size"]), held["oldest"]
