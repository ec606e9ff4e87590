"""The worker's side of a payout: send it to the gateway, settle what the gateway answered.

payout_send(payout_id)
  ├─ claim (its own transaction, payout row locked): a `pending` payout not held for review
  │   moves to `in_transit` (the owner can no longer cancel it: the money is on its way)
  ├─ the gateway call, no lock held: create_payout(idempotency key = the payout's id), so a
  │   repeat — a retry, a task run twice, the sweep — is the same payout at the gateway; a retry
  │   first looks the payout up by that key (retrieve_payout), however long after the first try
  └─ settle (its own transaction, row locked again): `paid` (in transit -> clearing), `failed`
      (reversed into the wallet), accepted and still in transit (the gateway settles it later:
      its webhooks, reconciliation), or a retryable error / lost answer: `attempts` + 1 and
      `next_attempt_at` after backoff — the schedule lives in the row, and `payouts_sweep` (beat)
      sends again whatever is due or was left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.actors import Actor
from apps.core.deferred import backoff_delay
from apps.gateways.base import GatewayError, GatewayResult, PaymentGateway
from apps.gateways.calls import ChargeSubject, GatewayExchange, gateway_call
from apps.payouts.locks import lock_payout
from apps.payouts.models import Payout
from apps.payouts.services.booking import book_payout_paid, book_payout_reversal, payout_move

logger = logging.getLogger(__name__)
S = Payout.Status
OPERATION = "payout"


def payout_gateway_key(payout: Payout) -> str:
    """The idempotency key of the payout's gateway call: its id, so every attempt is one payout."""
    return payout.pk


def payout_send(*, actor: Actor = None, payout_id: str) -> Payout:
    """Sends the payout to its gateway if it is waiting to be sent (not held, not already answered)
    and settles the answer; otherwise leaves it as it is. Safe to run twice or concurrently."""
    payout = _claim(actor=actor, payout_id=payout_id)
    if payout is None:
        return Payout.objects.get(pk=payout_id)
    exchange = payout_gateway_call(payout, lambda gateway: _create_once(gateway, payout))
    try:
        return payout_settle(actor=actor, payout_id=payout_id, exchange=exchange)
    except Exception:
        exchange.record_alone()  # the call was made: its attempt stays on record
        raise


def payout_gateway_call(
    payout: Payout, call: Callable[[PaymentGateway], GatewayResult | None], *, operation: str = OPERATION
) -> GatewayExchange:
    """One call of the payout's gateway about it, through `gateway_call` (circuit breaker, attempt
    record, raw log), under the payout's key."""
    return gateway_call(
        subject=ChargeSubject(
            pk=payout.pk,
            gateway=payout.gateway,
            currency=payout.currency,
            amount=payout.amount,
            gateway_reference=payout.gateway_reference,
        ),
        operation=operation,
        idempotency_key=payout_gateway_key(payout),
        call=call,
    )


def _create_once(gateway: PaymentGateway, payout: Payout) -> GatewayResult:
    """The gateway's payout for this payout, created by this call only if no earlier attempt made
    it. An attempt after the first asks the gateway first: the earlier one may have reached it with
    its answer lost, and a provider keeps an idempotency key for a limited time only (Stripe: 24 h),
    while retries after an outage can come later than that."""
    key = payout_gateway_key(payout)
    if payout.attempts:
        found = gateway.retrieve_payout(idempotency_key=key)
        if found is not None:
            return found
    return gateway.create_payout(
        amount=payout.amount,
        currency=payout.currency,
        destination=payout.destination_token,
        idempotency_key=key,
    )


def _waiting_to_be_sent(payout: Payout) -> bool:
    if payout.status == S.PENDING:
        return payout.review_status in (Payout.ReviewStatus.NONE, Payout.ReviewStatus.APPROVED)
    # In transit with no answer from the gateway yet (a retryable error, a lost answer, a crash).
    return payout.status == S.IN_TRANSIT and not payout.gateway_reference


@transaction.atomic(durable=True)
def _claim(*, actor: Actor, payout_id: str) -> Payout | None:
    payout = lock_payout(payout_id)
    if not _waiting_to_be_sent(payout):
        return None
    if payout.status == S.PENDING:
        payout.next_attempt_at = None
        payout_move(
            actor=actor,
            payout=payout,
            to=S.IN_TRANSIT,
            action="send",
            event="payout.in_transit",
            fields=("next_attempt_at",),
        )
    return payout


@dataclass(frozen=True)
class _Failure:
    code: str
    message: str


@transaction.atomic(durable=True)
def payout_settle(*, actor: Actor, payout_id: str, exchange: GatewayExchange) -> Payout:
    """Settles the locked payout by what the gateway answered to `exchange` (recorded with it)."""
    payout = lock_payout(payout_id)
    exchange.record()
    if payout.status != S.IN_TRANSIT:
        return payout  # settled meanwhile (a concurrent run, a webhook)
    outcome = exchange.outcome
    if isinstance(outcome, GatewayResult):
        if outcome.status == "paid":
            book_payout_paid(actor=actor, payout=payout, gateway_reference=outcome.reference)
        elif outcome.status == "failed":
            _fail(
                actor,
                payout,
                _Failure(outcome.failure_code or "payout_failed", outcome.failure_message),
                outcome.reference,
            )
        else:  # accepted: the gateway settles it later (its webhooks, reconciliation)
            payout.gateway_reference = outcome.reference[:255]
            payout.attempts += 1
            payout.next_attempt_at = None
            payout_move(
                actor=actor,
                payout=payout,
                to=S.IN_TRANSIT,
                action="accepted",
                fields=("gateway_reference", "attempts", "next_attempt_at"),
            )
    elif exchange.retryable or exchange.lost or outcome is None:
        _schedule_retry(actor, payout, code=getattr(outcome, "code", "not_found"))
    elif isinstance(outcome, GatewayError):
        # The gateway refused the payout outright: nothing was sent, the money goes back.
        _fail(actor, payout, _Failure(outcome.code, str(outcome)), "")
    return payout


def _fail(actor: Actor, payout: Payout, failure: _Failure, reference: str) -> None:
    book_payout_reversal(
        actor=actor,
        payout=payout,
        to=S.FAILED,
        action="fail",
        failure=(failure.code, failure.message or failure.code),
        gateway_reference=reference,
    )


def _schedule_retry(actor: Actor, payout: Payout, *, code: str) -> None:
    """Another call later, same key: `next_attempt_at` after backoff with full jitter."""
    payout.attempts += 1
    delay = backoff_delay(
        attempt=payout.attempts,
        base=settings.PAYOUT_RETRY_BASE_SECONDS,
        maximum=settings.PAYOUT_RETRY_MAX_SECONDS,
    )
    # Never sooner than the base delay: the sweep, not a tight loop, makes the next call.
    payout.next_attempt_at = timezone.now() + timedelta(
        seconds=max(delay, settings.PAYOUT_RETRY_BASE_SECONDS)
    )
    logger.warning(
        "payout %s: gateway error %s, attempt %d, retry at %s",
        payout.pk,
        code,
        payout.attempts,
        payout.next_attempt_at,
    )
    payout_move(
        actor=actor,
        payout=payout,
        to=S.IN_TRANSIT,
        action="retry_scheduled",
        fields=("attempts", "next_attempt_at"),
    )


def payouts_due(*, now: datetime | None = None, limit: int = 200) -> list[str]:
    """Payouts waiting for the worker, oldest first: a retry due, or left behind (no retry scheduled
    and untouched for PAYOUT_STUCK_AFTER_SECONDS: their task was lost with the broker, a worker died)."""
    now = now or timezone.now()
    stuck = now - timedelta(seconds=settings.PAYOUT_STUCK_AFTER_SECONDS)
    waiting = Q(status=S.PENDING, review_status__in=["", "approved"]) | Q(
        status=S.IN_TRANSIT, gateway_reference=""
    )
    due = Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, updated_at__lte=stuck)
    return list(
        Payout.objects.filter(waiting & due).order_by("created_at").values_list("pk", flat=True)[:limit]
    )


def payouts_sweep(*, now: datetime | None = None) -> int:
    """Sends every payout that is due (see `payouts_due`), one after the other; returns how many."""
    sent = 0
    for payout_id in payouts_due(now=now):
        try:
            payout_send(actor=None, payout_id=payout_id)
            sent += 1
        except Exception:
            logger.exception("payout %s: send failed in the sweep; the next sweep tries again", payout_id)
    return sent
