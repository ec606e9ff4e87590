"""Risk rules: why a payment or a deposit is held for review instead of captured.

Rules that can be judged before the gateway (amount, velocity) make the gateway only authorize;
the gateway's own risk signal (`risk_level == "elevated"`) is added when it answers (payments).

Velocity is counted per owner — the authenticated user whose money it is (a payment's owner, a
deposit's wallet owner) — over payments and deposits together: never per a client-supplied
`customer_id`, which a caller can change at will.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

AMOUNT_OVER_THRESHOLD = "amount_over_threshold"
VELOCITY = "owner_velocity"
GATEWAY_ELEVATED = "gateway_elevated_risk"


def assess(*, owner: Any, amount: int) -> list[str]:
    """A payment's up-front reasons to hold it (its `customer_id`, the caller's label, plays no part)."""
    reasons = []
    if amount >= settings.REVIEW_AMOUNT_THRESHOLD:
        reasons.append(AMOUNT_OVER_THRESHOLD)
    if over_velocity(owner=owner):
        reasons.append(VELOCITY)
    return reasons


def assess_deposit(*, owner: Any, amount: int) -> list[str]:
    """A deposit's reasons to hold it for review (authorize only, credit nothing until approved)."""
    reasons = []
    if amount >= settings.DEPOSIT_REVIEW_AMOUNT_THRESHOLD:
        reasons.append(AMOUNT_OVER_THRESHOLD)
    if over_velocity(owner=owner):
        reasons.append(VELOCITY)
    return reasons


def over_velocity(*, owner: Any) -> bool:
    """Has the owner already made RISK_VELOCITY_LIMIT payments and deposits (any outcome) within
    RISK_VELOCITY_WINDOW_SECONDS? Then the next one is held.

    Called in the transaction that records the payment or deposit: the owner's row is locked
    first, so concurrent requests of one owner are counted one after the other (a burst sent in
    parallel can't all see "under the limit"). Lock order: wallet rows, then the owner.
    """
    from apps.payments.models import Payment
    from apps.wallets.models import Transaction

    get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk").first()
    limit = settings.RISK_VELOCITY_LIMIT
    since = timezone.now() - timedelta(seconds=settings.RISK_VELOCITY_WINDOW_SECONDS)
    payments = Payment.objects.filter(owner=owner, created_at__gte=since).values("created_at")
    deposits = Transaction.objects.filter(
        type=Transaction.Type.DEPOSIT, destination_wallet__user=owner, created_at__gte=since
    ).values("created_at")
    # One query; counting stops at the limit: the question is "at least N?", not "how many?".
    return payments[:limit].union(deposits[:limit], all=True).count() >= limit
