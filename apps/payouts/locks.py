"""Row locks of payouts: the payout, then its wallet (taken by the money functions), then the audit
chain. Creation locks only the wallet (its payout does not exist yet)."""

from __future__ import annotations

from apps.payouts.errors import PayoutNotFound
from apps.payouts.models import Payout


def lock_payout(payout_id: str) -> Payout:
    """The payout's row, locked (FOR UPDATE) until the caller's transaction ends."""
    payout = (
        Payout.objects.select_for_update(of=("self",)).select_related("wallet").filter(pk=payout_id).first()
    )
    if payout is None:
        raise PayoutNotFound(f"No such payout: '{payout_id}'")
    return payout
