"""What a payment provider tells us after the fact: late successes, failures, refunds made at the
provider, disputes. The webhook processor (apps.webhooks) turns each verified provider event into
`ProviderChange`s and applies them here.

Every function runs inside the caller's transaction (like `ledger_post` and `audit_record`): the
caller locks the payment with `payment_lock_for_change`, applies the changes and records that the
provider event was handled, all in one commit, so an event is applied once or not at all. The
changes go through the same state machine, ledger postings, audit records and outbox events as
Paydesk's own operations. A change that doesn't fit the payment's state is not forced: the function
returns an `Outcome` that says nothing was applied (an older event arriving late, or news the
payment already shows), raises `ProviderChangeDeferred` when a later attempt may find the payment
ready (its success not yet recorded, one of our own refunds still in flight), and raises
`ProviderChangeRejected` when the provider contradicts the books in a way only a person can settle.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from django.db import transaction
from django.db.models import Q

from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.money import CURRENCY_EXPONENTS
from apps.core.outbox import emit_event
from apps.payments import cache as payment_cache
from apps.payments.models import Payment, Refund
from apps.payments.services import capture_card_payment, complete_refund, payment_move, payment_payload

S = Payment.Status

ChangeKind = Literal["succeeded", "failed", "refunded", "refund_failed", "dispute_opened"]
# Changes that set the payment's status, as opposed to refunds and disputes, which add to it.
STATUS_CHANGES = frozenset({"succeeded", "failed"})
# A provider can report a capture for a payment whose outcome Paydesk is still waiting for, or one
# authorized and captured at the provider (its dashboard) rather than through Paydesk.
_LATE_SUCCESS_FROM = frozenset({S.PENDING, S.PROCESSING, S.RECONCILE, S.REQUIRES_CAPTURE})
_LATE_FAILURE_FROM = frozenset({S.PENDING, S.PROCESSING, S.RECONCILE})
_CAPTURE_PENDING = frozenset({S.PENDING, S.PROCESSING, S.RECONCILE, S.REQUIRES_CAPTURE, S.IN_REVIEW})


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


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("provider changes must be applied inside the caller's transaction")


def payment_lock_for_change(*, change: ProviderChange) -> Payment | None:
    """The payment the change is about, locked (`FOR UPDATE`) until the caller commits.

    By gateway reference first; else by the provider's hint, but only for a payment that has no
    reference yet (or the same one), so a hint can never redirect a change to another charge.
    """
    _require_transaction()
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


def payment_apply_provider_change(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    """Applies one change to the payment locked by `payment_lock_for_change`.

    `source` names where the news came from (e.g. the webhook event); it goes into the audit
    records and the events the change causes.
    """
    _require_transaction()
    if change.currency and change.currency.upper() != payment.currency:
        raise ProviderChangeRejected(
            f"the provider reports {change.currency.upper()} for {payment.pk}, which is in {payment.currency}"
        )
    if change.kind == "succeeded":
        return _late_success(actor=actor, payment=payment, change=change, source=source)
    if change.kind == "failed":
        return _late_failure(actor=actor, payment=payment, change=change, source=source)
    if change.kind == "refunded":
        return _provider_refund(actor=actor, payment=payment, change=change, source=source)
    if change.kind == "refund_failed":
        return _provider_refund_failed(payment=payment, change=change)
    return _dispute_opened(actor=actor, payment=payment, change=change, source=source)


def _minor_amount(change: ProviderChange, payment: Payment) -> int | None:
    if change.major_amount is None:
        return change.amount
    minor = change.major_amount.scaleb(CURRENCY_EXPONENTS[payment.currency])
    if minor != minor.to_integral_value():
        raise ProviderChangeRejected(
            f"the provider's amount {change.major_amount} has more decimals than {payment.currency} allows"
        )
    return int(minor)


def _adopt_reference(payment: Payment, change: ProviderChange) -> None:
    """A payment found by the provider's hint learns the provider's id for it (saved by `payment_move`)."""
    reference = next((r for r in change.references if r), "")
    if reference and not payment.gateway_reference:
        payment.gateway_reference = reference[:255]


def _late_success(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    if payment.status in (S.SUCCEEDED, S.REFUNDED):
        return Outcome(False, f"{payment.pk} is already {payment.status}")
    if payment.status not in _LATE_SUCCESS_FROM:
        if payment.status == S.IN_REVIEW:
            # Money held for review is captured by a reviewer's decision, not by the provider's news.
            return Outcome(False, f"{payment.pk} is held for review; the success waits for the decision")
        raise ProviderChangeRejected(
            f"the provider reports a success for {payment.pk}, which Paydesk recorded as {payment.status}"
        )
    amount = _minor_amount(change, payment) or payment.amount
    if not 0 < amount <= payment.amount:
        raise ProviderChangeRejected(
            f"the provider reports {amount} captured for {payment.pk}, authorized for {payment.amount}"
        )
    _adopt_reference(payment, change)
    capture_card_payment(
        actor=actor, payment=payment, amount=amount, action="capture", extra={"source": "provider", **source}
    )
    return Outcome(True, f"{payment.pk} succeeded ({amount} captured at the provider)")


def _late_failure(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    if payment.status not in _LATE_FAILURE_FROM:
        return Outcome(False, f"{payment.pk} is {payment.status}; a failure can't change it")
    message = change.failure_message or "The payment was declined."
    _adopt_reference(payment, change)
    payment_move(
        actor=actor,
        payment=payment,
        to=S.FAILED,
        action="fail",
        event="payment.failed",
        failure=(change.failure_code or "gateway_declined", message),
        extra={"source": "provider", **source},
    )
    return Outcome(True, f"{payment.pk} failed ({payment.failure_code})")


def _provider_refund(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    """A refund made at the provider: a Refund row and its ledger entry, once per refund reference.

    Our own refunds reach the provider too, and its news of them may arrive before our own answer
    is written (the refund row still pending, without the reference): those are deferred, so the
    reference is known by the time it's looked at again and the refund is never counted twice.
    """
    reference = change.refund_reference
    if reference and payment.refunds.filter(gateway_reference=reference).exists():
        return Outcome(False, f"refund {reference} is already recorded on {payment.pk}")
    if payment.refunds.filter(status=Refund.Status.PENDING).exists():
        raise ProviderChangeDeferred(f"a refund of {payment.pk} is in flight; it may be this one")
    if payment.status in _CAPTURE_PENDING:
        raise ProviderChangeDeferred(f"{payment.pk} is {payment.status}; its capture is not recorded yet")
    amount = _minor_amount(change, payment)
    refundable = payment.amount_captured - payment.amount_refunded
    if payment.status not in (S.SUCCEEDED, S.REFUNDED) or amount is None or not 0 < amount <= refundable:
        raise ProviderChangeRejected(
            f"the provider refunded {amount} of {payment.pk} ({payment.status}), "
            f"which has {refundable} left to refund"
        )
    refund = Refund.objects.create(
        payment=payment, amount=amount, reason="Refunded at the provider", gateway_reference=reference[:255]
    )
    audit_record(
        actor=actor,
        action="refund.create",
        entity_type="refund",
        entity_id=refund.pk,
        after={"payment": payment.pk, "amount": amount, "gateway_reference": reference, **source},
    )
    complete_refund(actor=actor, payment=payment, refund=refund)
    return Outcome(True, f"refund {reference or refund.pk} of {amount} recorded on {payment.pk}")


def _provider_refund_failed(*, payment: Payment, change: ProviderChange) -> Outcome:
    known = payment.refunds.filter(gateway_reference=change.refund_reference).first()
    if known is None or known.status != Refund.Status.SUCCEEDED:
        return Outcome(False, f"refund {change.refund_reference} was never recorded; nothing to undo")
    # The money was credited back in the books; taking it back is a correction a person makes.
    raise ProviderChangeRejected(
        f"refund {change.refund_reference} of {payment.pk} failed at the provider after it was recorded"
    )


def _dispute_opened(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    """Flags the payment (`dispute_reference`, `dispute_reason`): no money moves until it's decided."""
    if payment.dispute_reference == change.dispute_reference:
        return Outcome(False, f"dispute {change.dispute_reference} is already flagged on {payment.pk}")
    before = {"dispute": payment.dispute_reference or None}
    payment.dispute_reference = change.dispute_reference[:255]
    payment.dispute_reason = (change.dispute_reason or "unknown")[:100]
    payment.save(update_fields=["dispute_reference", "dispute_reason", "updated_at"])
    details = {
        "dispute": change.dispute_reference,
        "dispute_reason": change.dispute_reason or "unknown",
        "dispute_amount": _minor_amount(change, payment),
        **source,
    }
    emit_event(
        event_type="payment.dispute_opened",
        aggregate=payment,
        payload={**payment_payload(payment), **details},
    )
    audit_record(
        actor=actor,
        action="payment.dispute_opened",
        entity_type="payment",
        entity_id=payment.pk,
        before=before,
        after=details,
    )
    payment_cache.bump_on_commit(owner_ids=[payment.owner_id])
    return Outcome(True, f"dispute {change.dispute_reference} flagged on {payment.pk}")
