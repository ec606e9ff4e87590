"""Reads of what gateways keep: the attempts made for one subject (a payment or a deposit)."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.gateways.models import GatewayAttempt


def gateway_attempts_for(*, subject_id: str) -> QuerySet[GatewayAttempt]:
    """Every gateway call made for `subject_id` (a payment's `pay_…`, a deposit's `txn_…`), oldest first."""
    return GatewayAttempt.objects.filter(subject_id=subject_id).order_by("created_at", "id")
