"""Row locks on payments (`SELECT … FOR UPDATE`), taken inside the caller's transaction.

Order, where several are taken: the payment first, then its refund or review, then wallets, and the
audit chain's lock last (taken by `audit_record`).
"""

from __future__ import annotations

from apps.accounts.models import User
from apps.payments.errors import PaymentNotFound
from apps.payments.models import Payment


def lock_payment(payment_id: str, *, owner: User | None = None) -> Payment:
    """The payment, locked until the caller commits; `owner` scopes it (someone else's is not found)."""
    queryset = Payment.objects.select_for_update(of=("self",))
    if owner is not None:
        queryset = queryset.filter(owner=owner)
    payment = queryset.filter(pk=payment_id).first()
    if payment is None:
        raise PaymentNotFound(f"No such payment: '{payment_id}'")
    return payment
