"""Applying one provider change to its locked payment: the dispatch by kind."""

from __future__ import annotations

from collections.abc import Callable

from apps.core.actors import Actor
from apps.payments.models import Payment
from apps.payments.provider_events import holds, settling
from apps.payments.provider_events.changes import (
    Outcome,
    ProviderChange,
    ProviderChangeRejected,
    require_transaction,
)


def payment_apply_provider_change(
    *, actor: Actor, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> Outcome:
    """Applies one change to the payment locked by `payment_lock_for_change`.

    `source` names where the news came from (e.g. the webhook event); it goes into the audit
    records and the events the change causes.
    """
    require_transaction()
    if change.currency and change.currency.upper() != payment.currency:
        raise ProviderChangeRejected(
            f"the provider reports {change.currency.upper()} for {payment.pk}, which is in {payment.currency}"
        )
    apply = _BY_KIND[change.kind]
    return apply(actor=actor, payment=payment, change=change, source=source)


Apply = Callable[..., Outcome]
# What each kind of change does (`settling`: money and disputes; `holds`: Authorize.Net's review
# holds and voids). Each takes (actor, payment, change, source) as keywords.
_BY_KIND: dict[str, Apply] = {
    "succeeded": settling.late_success,
    "failed": settling.late_failure,
    "refunded": settling.provider_refund,
    "refund_failed": settling.provider_refund_failed,
    "dispute_opened": settling.dispute_opened,
    "held": holds.provider_held,
    "voided": holds.provider_voided,
    "review_approved": holds.provider_review_approved,
    "review_declined": holds.provider_review_declined,
}
