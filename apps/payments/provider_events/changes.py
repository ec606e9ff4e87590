"""What a provider says happened, in Paydesk's words (`ProviderChange`), what applying it came to
(`Outcome`), and finding the payment it is about, locked (`payment_lock_for_change`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from django.db import transaction
from django.db.models import Q

from apps.core.money import CURRENCY_EXPONENTS
from apps.payments.models import Payment

ChangeKind = Literal[
    "succeeded",
    "failed",
    "refunded",
    "refund_failed",
    "dispute_opened",
    "held",
    "voided",
    "review_approved",
    "review_declined",
]
# Changes that set the payment's status, as opposed to refunds and disputes, which add to it.
STATUS_CHANGES = frozenset({"succeeded", "failed", "held", "voided", "review_approved", "review_declined"})


class ProviderChangeDeferred(Exception):
    """Not applicable yet, but may be on a later attempt: retry it."""


class ProviderChangeRejected(Exception):
    """The provider contradicts the books (more refunded than captured, a success for a payment
    recorded as failed...): retrying can't help, a person must look."""


@dataclass(frozen=True)
class ProviderChange:
    """One thing a provider says happened to one of its charges, in Paydesk's words.

    `references` are the provider's ids that a payment's `gateway_reference` may hold (a Stripe
    PaymentIntent id, an Authorize.Net transId). `payment_hint` is the payment id the provider
    carries back for us (Stripe metadata written when the payment was authorized): the only way
    to find a payment whose authorization answer was lost, so it has no gateway reference yet.
    Amounts are minor units, or `major_amount` for providers that send decimals (Authorize.Net);
    `currency` is empty when the provider does not say.
    """

    kind: ChangeKind
    references: tuple[str, ...]
    payment_hint: str = ""
    amount: int | None = None
    major_amount: Decimal | None = None
    currency: str = ""
    refund_reference: str = ""
    failure_code: str = ""
    failure_message: str = ""
    dispute_reference: str = ""
    dispute_reason: str = ""


@dataclass(frozen=True)
class Outcome:
    applied: bool
    detail: str


def require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("provider changes must be applied inside the caller's transaction")


def payment_lock_for_change(*, change: ProviderChange) -> Payment | None:
    """The payment the change is about, locked (`FOR UPDATE`) until the caller commits.

    By gateway reference first; else by the provider's hint, but only for a payment that has no
    reference yet (or the same one), so a hint can never redirect a change to another charge.
    """
    require_transaction()
    references = [reference for reference in change.references if reference]
    locked = Payment.objects.select_for_update(of=("self",))
    if references:
        payment = locked.filter(gateway_reference__in=references).order_by("pk").first()
        if payment is not None:
            return payment
    if change.payment_hint:
        return (
            locked.filter(pk=change.payment_hint, method_type=Payment.MethodType.CARD)
            .filter(Q(gateway_reference="") | Q(gateway_reference__in=references))
            .first()
        )
    return None


def minor_amount(change: ProviderChange, payment: Payment) -> int | None:
    if change.major_amount is None:
        return change.amount
    minor = change.major_amount.scaleb(CURRENCY_EXPONENTS[payment.currency])
    if minor != minor.to_integral_value():
        raise ProviderChangeRejected(
            f"the provider's amount {change.major_amount} has more decimals than {payment.currency} allows"
        )
    return int(minor)


def adopt_reference(payment: Payment, change: ProviderChange) -> None:
    """A payment found by the provider's hint learns the provider's id for it (saved by `payment_move`)."""
    reference = next((r for r in change.references if r), "")
    if reference and not payment.gateway_reference:
        payment.gateway_reference = reference[:255]
