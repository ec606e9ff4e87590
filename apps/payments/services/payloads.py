"""What a payment looks like to the outside: in events (`payment_payload`) and in audit rows."""

from __future__ import annotations

from typing import Any

from apps.payments.models import Payment


def audit_view(payment: Payment) -> dict[str, Any]:
    return {
        "status": payment.status,
        "amount": payment.amount,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "pending_operation": payment.pending_operation,
        "failure_code": payment.failure_code,
    }


def payment_payload(payment: Payment) -> dict[str, Any]:
    """What events say about a payment (ids and money, never the token)."""
    return {
        "payment": payment.pk,
        "owner": payment.owner_id,
        "customer_id": payment.customer_id,
        "status": payment.status,
        "amount": payment.amount,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "failure_code": payment.failure_code,
        "subscription": payment.subscription_id or None,
    }
