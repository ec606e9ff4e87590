"""Reconciliation of payouts stuck `in_transit` (`manage.py reconcile_payouts`): ask the gateway.

A payout stays `in_transit` until the gateway settles it: at once (the simulated gateway), or days
later through its webhooks (Stripe's `payout.paid` / `payout.failed`). A webhook lost for good, or a
payout whose answer was lost and that the gateway nevertheless took, would stay in transit for
ever; reconciliation asks the gateway by the payout's key (`retrieve_payout`: nothing is created)
about every payout in transit and untouched for PAYOUT_RECONCILE_AFTER_SECONDS, and settles it the
way a webhook would (`payout_apply_gateway_result`, under the payout's row lock):

    the gateway says paid / failed   -> paid / failed (reversed into the wallet), once
    still in transit                 -> left; a payout whose answer was lost learns its reference
    the gateway never saw the key    -> left for the payouts sweep, which sends it with that key
    no answer / a contradiction      -> left, reported (the command exits non-zero)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.actors import Actor
from apps.gateways.base import GatewayError, GatewayResult
from apps.gateways.calls import GatewayExchange
from apps.payments.provider_events import ProviderChangeRejected
from apps.payouts.locks import lock_payout
from apps.payouts.models import Payout
from apps.payouts.services.gateway_news import payout_apply_gateway_result
from apps.payouts.services.sending import payout_gateway_call, payout_gateway_key

logger = logging.getLogger(__name__)
S = Payout.Status
OPERATION = "payout_retrieve"


@dataclass(frozen=True)
class PayoutCheck:
    """One payout looked at: its status before and after, and what happened, in words."""

    payout_id: str
    before: str
    after: str
    note: str
    problem: bool = False  # the gateway did not answer, or contradicts the books


@dataclass
class PayoutReconciliation:
    checks: list[PayoutCheck] = field(default_factory=list)
    dry_run: bool = False

    @property
    def settled(self) -> int:
        return sum(1 for check in self.checks if check.after != check.before)

    @property
    def problems(self) -> int:
        return sum(1 for check in self.checks if check.problem)


def payouts_to_reconcile(*, older_than: timedelta | None = None) -> list[str]:
    """Payouts in transit and untouched for `older_than` (PAYOUT_RECONCILE_AFTER_SECONDS), oldest first."""
    window = (
        older_than if older_than is not None else timedelta(seconds=settings.PAYOUT_RECONCILE_AFTER_SECONDS)
    )
    return list(
        Payout.objects.filter(status=S.IN_TRANSIT, updated_at__lte=timezone.now() - window)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )


def payouts_reconcile(
    *,
    actor: Actor = None,
    older_than: timedelta | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], Any] | None = None,
) -> PayoutReconciliation:
    """Asks the gateway about every payout stuck in transit and settles each (see the module). A dry
    run lists them and neither calls the gateway nor writes anything."""
    report = PayoutReconciliation(dry_run=dry_run)
    todo = payouts_to_reconcile(older_than=older_than)
    for done, payout_id in enumerate(todo, start=1):
        if dry_run:
            report.checks.append(PayoutCheck(payout_id, S.IN_TRANSIT, S.IN_TRANSIT, "would ask the gateway"))
        else:
            try:
                report.checks.append(payout_reconcile(actor=actor, payout_id=payout_id))
            except Exception as exc:
                logger.exception("payout %s: reconciliation failed", payout_id)
                report.checks.append(
                    PayoutCheck(payout_id, S.IN_TRANSIT, S.IN_TRANSIT, f"failed: {type(exc).__name__}", True)
                )
        if progress is not None:
            progress(done, len(todo))
    return report


def payout_reconcile(*, actor: Actor, payout_id: str) -> PayoutCheck:
    """Asks the payout's gateway what became of it (by its key) and settles it; see the module."""
    payout = Payout.objects.get(pk=payout_id)
    if payout.status != S.IN_TRANSIT:
        return PayoutCheck(payout_id, payout.status, payout.status, "not in transit any more")
    key = payout_gateway_key(payout)
    exchange = payout_gateway_call(
        payout, lambda gateway: gateway.retrieve_payout(idempotency_key=key), operation=OPERATION
    )
    outcome = exchange.outcome
    if isinstance(outcome, GatewayError):
        exchange.record_alone()
        return PayoutCheck(payout_id, S.IN_TRANSIT, S.IN_TRANSIT, f"gateway error {outcome.code}", True)
    if outcome is None:
        exchange.record_alone()
        if payout.gateway_reference:
            note = f"the gateway knows no payout with its key, though it answered {payout.gateway_reference}"
            return PayoutCheck(payout_id, S.IN_TRANSIT, S.IN_TRANSIT, note, True)
        return PayoutCheck(
            payout_id, S.IN_TRANSIT, S.IN_TRANSIT, "never reached the gateway: the payouts sweep sends it"
        )
    try:
        return _settle(actor=actor, payout_id=payout_id, exchange=exchange, result=outcome)
    except ProviderChangeRejected as exc:
        exchange.record_alone()
        logger.error("payout %s: the gateway contradicts the books: %s", payout_id, exc)
        return PayoutCheck(payout_id, S.IN_TRANSIT, S.IN_TRANSIT, str(exc), True)


@transaction.atomic(durable=True)
def _settle(*, actor: Actor, payout_id: str, exchange: GatewayExchange, result: GatewayResult) -> PayoutCheck:
    payout = lock_payout(payout_id)
    before = payout.status
    outcome = payout_apply_gateway_result(actor=actor, payout=payout, result=result)
    exchange.record()
    return PayoutCheck(payout_id, before, payout.status, outcome.detail)
