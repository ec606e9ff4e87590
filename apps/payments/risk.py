"""Risk rules: why a payment is held for review instead of captured.

Rules that can be judged before the gateway (amount, velocity) make the gateway only authorize;
the gateway's own risk signal (`risk_level == "elevated"`) is added when it answers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

AMOUNT_OVER_THRESHOLD = "amount_over_threshold"
VELOCITY = "customer_velocity"
GATEWAY_ELEVATED = "gateway_elevated_risk"


def assess(*, owner: Any, customer_id: str, amount: int) -> list[str]:
    from apps.payments.models import Payment

    reasons = []
    if amount >= settings.REVIEW_AMOUNT_THRESHOLD:
        reasons.append(AMOUNT_OVER_THRESHOLD)
    since = timezone.now() - timedelta(seconds=settings.PAYMENT_VELOCITY_WINDOW_SECONDS)
    recent = Payment.objects.filter(owner=owner, customer_id=customer_id, created_at__gte=since)
    # Counting stops at the limit: the question is "at least N?", not "how many?".
    if recent[: settings.PAYMENT_VELOCITY_LIMIT].count() >= settings.PAYMENT_VELOCITY_LIMIT:
        reasons.append(VELOCITY)
    return reasons
