"""Settling a payout by what its gateway says happened to it, when the news does not come as the
answer to our own call: the gateway's webhooks (Stripe's `payout.paid`, `payout.failed`) and
reconciliation (`manage.py reconcile_payouts`, which asks the gateway by the payout's key).

    payout_lock_for_gateway(hint, reference)   the payout the news is about, row locked: by our id
                                               (the key Stripe keeps in the payout's metadata), else
                                               by the gateway's reference
    payout_apply_gateway_result(payout, result)
        in_transit, gateway says paid    -> paid       (book_payout_paid: in transit -> clearing)
        in_transit, gateway says failed  -> failed     (book_payout_reversal: back into the wallet,
                                                        failure_code the gateway's)
        in_transit, still in transit     -> its reference noted if it had none, nothing else
        already what the gateway says    -> nothing (a repeat delivery, a webhook after reconciliation)
        anything else (paid, then failed; canceled at Paydesk but paid at the gateway; another amount)
                                         -> ProviderChangeRejected: the gateway contradicts the
                                            books, a person must look (the webhook goes dead with
                                            a dead letter; reconciliation reports it)

Both run in the caller's transaction with the payout's row lock held, so however often an event is
delivered, and whatever races it (the worker's own answer, reconciliation), the money moves once:
the second comer finds the payout settled.
"""

from __future__ import annotations

from django.db import transaction

from apps.core.actors import Actor
from apps.core.ids import has_prefix
from apps.gateways.base import GatewayResult
from apps.payments.provider_events import Outcome, ProviderChangeRejected
from apps.payouts.errors import PayoutNotFound
from apps.payouts.locks import lock_payout
from apps.payouts.models import Payout
from apps.payouts.services.booking import book_payout_paid, book_payout_reversal, payout_move

S = Payout.Status
_SETTLES = {"paid": S.PAID, "failed": S.FAILED}


def require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("a gateway's news of a payout is applied inside the caller's transaction")


def payout_lock_for_gateway(*, hint: str, reference: str) -> Payout | None:
    """The payout a gateway's news is about, locked in the caller's transaction; None when Paydesk
    has no such payout (a payout of the platform's own, made at the gateway)."""
    require_transaction()
    payout_id = hint if has_prefix(hint, "po") else ""
    if not payout_id and reference:
        payout_id = (
            Payout.objects.filter(gateway_reference=reference).values_list("pk", flat=True).first() or ""
        )
    if not payout_id:
        return None
    try:
        payout = lock_payout(payout_id)
    except PayoutNotFound:
        return None
    if reference and payout.gateway_reference and payout.gateway_reference != reference:
        raise ProviderChangeRejected(
            f"the gateway's payout {reference} names {payout.pk}, whose gateway payout is "
            f"{payout.gateway_reference}"
        )
    return payout


def payout_apply_gateway_result(*, actor: Actor, payout: Payout, result: GatewayResult) -> Outcome:
    """Settles the locked payout by the gateway's `result` (see the module); says what it did."""
    require_transaction()
    if result.amount and (result.amount, result.currency.upper()) != (payout.amount, payout.currency):
        raise ProviderChangeRejected(
            f"the gateway's payout {result.reference} is {result.amount} {result.currency}; "
            f"{payout.pk} is {payout.amount} {payout.currency}"
        )
    if result.status == "in_transit":
        return _note_reference(actor=actor, payout=payout, reference=result.reference)
    target = _SETTLES.get(result.status)
    if target is None:
        raise ProviderChangeRejected(
            f"a payout cannot be {result.status!r} (gateway payout {result.reference})"
        )
    if payout.status == target:
        return Outcome(False, f"{payout.pk} is already {target}")
    if payout.status != S.IN_TRANSIT:
        raise ProviderChangeRejected(
            f"{payout.pk} is {payout.status} at Paydesk but the gateway reports its payout "
            f"{result.reference} {result.status}"
            + (f" ({result.failure_code})" if result.failure_code else "")
            + ": a person must look"
        )
    if target == S.PAID:
        book_payout_paid(actor=actor, payout=payout, gateway_reference=result.reference)
    else:
        code = result.failure_code or "payout_failed"
        book_payout_reversal(
            actor=actor,
            payout=payout,
            to=S.FAILED,
            action="fail",
            failure=(code, result.failure_message or code),
            gateway_reference=result.reference,
        )
    return Outcome(True, f"{payout.pk}: in_transit -> {target}")


def _note_reference(*, actor: Actor, payout: Payout, reference: str) -> Outcome:
    """Still on its way: nothing settles, but a payout whose answer was lost learns its reference
    (so the worker does not send it again: it has been taken)."""
    if payout.status != S.IN_TRANSIT or payout.gateway_reference or not reference:
        return Outcome(False, f"{payout.pk} is {payout.status}; the gateway has it in transit")
    payout.gateway_reference = reference[:255]
    payout.next_attempt_at = None
    payout_move(
        actor=actor,
        payout=payout,
        to=S.IN_TRANSIT,
        action="accepted",
        fields=("gateway_reference", "next_attempt_at"),
    )
    return Outcome(True, f"{payout.pk}: in transit at the gateway as {payout.gateway_reference}")
