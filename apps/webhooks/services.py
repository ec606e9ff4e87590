"""Inbound webhooks: receive (verify, store once), process (apply to the payment), retry, replay.

    receive   verify the raw body's signature → parse → INSERT the event (unique per provider and
              provider event id: a repeat delivery hits the constraint and is answered as a no-op)
              → after commit, queue `process_webhook_event(id)`; the provider gets its 200 now
    process   one transaction: lock the event, lock its payment, apply the provider's changes
              (apps.payments.provider_events: state machine, ledger, audit, outbox) and mark the
              event processed/ignored — so an event is applied exactly once, however often it runs;
              a payout's event locks and settles its payout instead (apps.webhooks.payout_events)
    failure   attempts + 1; retried with exponential backoff and full jitter (Celery countdown)
              until WEBHOOK_MAX_ATTEMPTS, then `dead` with a DeadLetter; an event the provider
              contradicts the books with goes dead at once (retrying can't change its payload)
    replay    a failed, dead or ignored event gets a fresh set of attempts and is processed now

Out-of-order delivery: the state machine refuses illegal moves (a failure can't undo a success),
and an event that sets a payment's status is ignored when it is older than the last such event
applied to that payment. Refunds and disputes are applied by their own ids, in any order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.correlation import get_correlation_id
from apps.core.dead_letters import dead_letter_record, dead_letter_replay, replayer
from apps.core.deferred import backoff_delay, enqueue
from apps.core.models import DeadLetter
from apps.payments import provider_events
from apps.payments.models import Payment, Refund
from apps.payments.provider_events import ProviderChange, ProviderChangeDeferred, ProviderChangeRejected
from apps.webhooks.errors import (
    WebhookBodyTooLarge,
    WebhookEventAlreadyProcessed,
    WebhookEventNotFound,
    WebhookPayloadInvalid,
)
from apps.webhooks.models import WebhookEvent
from apps.webhooks.payout_events import payout_news_apply
from apps.webhooks.providers import PROVIDERS, STATUS_TYPES
from apps.webhooks.providers.envelope import Envelope, RefundedTotal, parse_body

logger = logging.getLogger(__name__)

Status = WebhookEvent.Status
OPEN = frozenset({Status.RECEIVED, Status.FAILED})
DEAD_LETTER_KIND = "webhook_event"
UNIQUE_CONSTRAINT = "webhook_event_once_per_provider"


# --- receive ------------------------------------------------------------------------------------


def webhook_event_receive(
    *, provider: str, body: bytes, headers: Mapping[str, str]
) -> tuple[WebhookEvent, bool]:
    """Verifies, parses and stores one delivery; returns (event, created). Nothing is stored unless
    the signature is valid; a repeat of a stored event returns the stored one, created=False."""
    if len(body) > settings.MAX_WEBHOOK_BODY_BYTES:
        raise WebhookBodyTooLarge(f"The body is over {settings.MAX_WEBHOOK_BODY_BYTES} bytes.")
    module = PROVIDERS[provider]
    module.verify(body, headers)
    envelope = module.envelope(parse_body(body))
    try:
        return _store(provider=provider, envelope=envelope), True
    except IntegrityError as exc:
        if UNIQUE_CONSTRAINT not in str(exc):
            raise
    except DataError:
        # Valid JSON PostgreSQL refuses to store (a \u0000 in a string): a 400, not a crash.
        raise WebhookPayloadInvalid("The event can't be stored: it holds characters the database refuses.")
    return WebhookEvent.objects.get(provider=provider, provider_event_id=envelope.event_id), False


@transaction.atomic(durable=True)
def _store(*, provider: str, envelope: Envelope) -> WebhookEvent:
    event = WebhookEvent.objects.create(
        provider=provider,
        provider_event_id=envelope.event_id,
        type=envelope.type,
        payload=envelope.payload,
        provider_created_at=envelope.created_at,
        correlation_id=get_correlation_id() or "",
    )
    event_id = event.pk
    transaction.on_commit(lambda: _enqueue(event_id))
    return event


def _enqueue(event_id: str, countdown: float = 0) -> None:
    from apps.webhooks.tasks import process_webhook_event

    # The broker is down: the event is stored, and the sweep (webhooks-sweep) queues it again.
    enqueue(process_webhook_event, event_id, fallback="the sweep", countdown=countdown)


# --- process ------------------------------------------------------------------------------------


def webhook_event_process(*, event_id: str) -> WebhookEvent:
    """Applies one stored event to its payment; returns the event as stored afterwards.

    Any failure rolls the whole attempt back (payment, ledger, audit and event row together), then
    is recorded on the event in a transaction of its own and retried or dead-lettered.
    """
    try:
        return _apply(event_id=event_id)
    except WebhookEventNotFound:
        raise
    except ProviderChangeRejected as exc:
        return _record_failure(event_id=event_id, error=str(exc), retryable=False)
    except ProviderChangeDeferred as exc:
        return _record_failure(event_id=event_id, error=str(exc), retryable=True)
    except Exception as exc:
        logger.exception("webhook event %s: processing failed", event_id)
        return _record_failure(event_id=event_id, error=f"{type(exc).__name__}: {exc}", retryable=True)


def _lock(event_id: str) -> WebhookEvent:
    event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
    if event is None:
        raise WebhookEventNotFound(f"No such webhook event: '{event_id}'")
    return event


@transaction.atomic(durable=True)
def _apply(*, event_id: str) -> WebhookEvent:
    # Lock order: the event, then its payment (nothing locks them the other way round).
    event = _lock(event_id)
    if event.status not in OPEN:
        return event  # already handled (a duplicate task, a sweep racing a retry) or dead
    news = PROVIDERS[event.provider].payout_news(event.type, event.payload)
    if news is not None:  # a payout's, not a payment's: apps.webhooks.payout_events
        status, outcome = payout_news_apply(news)
        return _finish(event, status=status, outcome=outcome)
    changes = PROVIDERS[event.provider].changes(event.type, event.payload)
    if not changes:
        return _finish(event, status=Status.IGNORED, outcome=f"Paydesk does not act on {event.type}")
    payment = provider_events.payment_lock_for_change(change=changes[0])
    if payment is None:
        # Our own write of the gateway reference may not have committed yet: wait, then dead-letter.
        references = ", ".join(r for r in changes[0].references if r) or changes[0].payment_hint
        raise ProviderChangeDeferred(f"no payment has the gateway reference {references}")
    newer = _newer_status_event(event, payment)
    if newer is not None:
        return _finish(
            event,
            status=Status.IGNORED,
            outcome=f"superseded: {newer.type} {newer.provider_event_id} is newer and already applied",
            payment=payment,
        )
    source = {"webhook_event": event.pk, "provider_event": event.provider_event_id}
    outcomes = [_apply_change(payment=payment, change=change, source=source) for change in changes]
    applied = any(outcome.applied for outcome in outcomes)
    return _finish(
        event,
        status=Status.PROCESSED if applied else Status.IGNORED,
        outcome="; ".join(outcome.detail for outcome in outcomes),
        payment=payment,
    )


# A refund recorded from a charge's running total (no provider refund id yet) is named after it.
TOTAL_REFERENCE_PREFIX = "total:"


def _apply_change(
    *, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> provider_events.Outcome:
    if isinstance(change, RefundedTotal):
        return _apply_refunded_total(payment=payment, change=change, source=source)
    if change.kind == "refunded" and change.refund_reference:
        claimed = _claim_refund_recorded_from_a_total(payment=payment, change=change, source=source)
        if claimed is not None:
            return claimed
    return provider_events.payment_apply_provider_change(
        actor=None, payment=payment, change=change, source=source
    )


def _apply_refunded_total(
    *, payment: Payment, change: RefundedTotal, source: dict[str, str]
) -> provider_events.Outcome:
    """What the provider says is refunded in all, less what the books already hold (our own
    refunds, ones applied by id, an earlier delivery of this total): read under the payment's row
    lock, so replays and concurrent deliveries add nothing more."""
    missing = change.refunded_total - payment.amount_refunded
    if missing <= 0:
        return provider_events.Outcome(
            False,
            f"{payment.pk} already has {payment.amount_refunded} refunded; "
            f"the provider reports {change.refunded_total}",
        )
    charge = next((reference for reference in reversed(change.references) if reference), payment.pk)
    return provider_events.payment_apply_provider_change(
        actor=None,
        payment=payment,
        change=ProviderChange(
            kind="refunded",
            references=change.references,
            amount=missing,
            currency=change.currency,
            refund_reference=f"{TOTAL_REFERENCE_PREFIX}{charge}:{change.refunded_total}",
        ),
        source={**source, "provider_amount_refunded": str(change.refunded_total)},
    )


def _claim_refund_recorded_from_a_total(
    *, payment: Payment, change: ProviderChange, source: dict[str, str]
) -> provider_events.Outcome | None:
    """A refund named by its id that a charge's total already brought into the books (Stripe sends
    `charge.refunded` and `refund.created` in either order): the recorded refund takes the id, and
    nothing is applied twice. None when no such refund is waiting for its id."""
    if change.amount is None or payment.refunds.filter(gateway_reference=change.refund_reference).exists():
        return None
    recorded = (
        payment.refunds.filter(
            gateway_reference__startswith=TOTAL_REFERENCE_PREFIX,
            amount=change.amount,
            status=Refund.Status.SUCCEEDED,
        )
        .order_by("created_at", "pk")
        .first()
    )
    if recorded is None:
        return None
    before = {"gateway_reference": recorded.gateway_reference}
    recorded.gateway_reference = change.refund_reference[:255]
    recorded.save(update_fields=["gateway_reference", "updated_at"])
    audit_record(
        actor=None,
        action="refund.identify",
        entity_type="refund",
        entity_id=recorded.pk,
        before=before,
        after={"payment": payment.pk, "gateway_reference": recorded.gateway_reference, **source},
    )
    return provider_events.Outcome(
        False,
        f"refund {change.refund_reference} was already recorded from the charge's total as {recorded.pk}",
    )


def _newer_status_event(event: WebhookEvent, payment: Payment) -> WebhookEvent | None:
    """The status-setting event already applied to the payment that happened after this one.

    Read under the payment's row lock, so two events of one payment are compared one at a time.
    """
    if event.type not in STATUS_TYPES or event.provider_created_at is None:
        return None
    return (
        WebhookEvent.objects.filter(
            payment=payment,
            status=Status.PROCESSED,
            type__in=STATUS_TYPES,
            provider_created_at__gt=event.provider_created_at,
        )
        .order_by("-provider_created_at")
        .first()
    )


def _finish(
    event: WebhookEvent, *, status: str, outcome: str, payment: Payment | None = None
) -> WebhookEvent:
    event.status = status
    event.outcome = outcome[:500]
    event.attempts += 1
    event.processed_at = timezone.now()
    event.next_attempt_at = None
    if payment is not None:
        event.payment = payment
    event.save(update_fields=["status", "outcome", "attempts", "processed_at", "next_attempt_at", "payment"])
    return event


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt: base·2^(attempts-1), capped, with full jitter."""
    return backoff_delay(
        attempt=attempts,
        base=settings.WEBHOOK_RETRY_BASE_SECONDS,
        maximum=settings.WEBHOOK_RETRY_MAX_SECONDS,
    )


@transaction.atomic(durable=True)
def _record_failure(*, event_id: str, error: str, retryable: bool) -> WebhookEvent:
    event = _lock(event_id)
    if event.status not in OPEN:
        return event
    event.attempts += 1
    event.last_error = error[:2000]
    if retryable and event.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        delay = retry_delay(event.attempts)
        event.status = Status.FAILED
        event.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        transaction.on_commit(lambda: _enqueue(event_id, countdown=delay))
        logger.warning(
            "webhook event %s: attempt %s failed, retry in %ss: %s", event_id, event.attempts, delay, error
        )
    else:
        event.status = Status.DEAD
        event.next_attempt_at = None
        dead_letter_record(
            kind=DEAD_LETTER_KIND,
            reference=event.pk,
            reason=f"{event.provider} {event.type} {event.provider_event_id}: {error}",
            payload={
                "webhook_event": event.pk,
                "provider": event.provider,
                "provider_event_id": event.provider_event_id,
                "type": event.type,
                "last_error": event.last_error,
            },
            attempts=event.attempts,
        )
        logger.error("webhook event %s is dead after %s attempt(s): %s", event_id, event.attempts, error)
    event.save(update_fields=["status", "attempts", "last_error", "next_attempt_at"])
    return event


# --- replay and sweep ---------------------------------------------------------------------------


def webhook_event_replay(*, actor: Actor, event_id: str) -> WebhookEvent:
    """Processes a failed, dead or ignored event again, now, with a fresh set of attempts.

    A dead event's open dead letter is replayed through `dead_letter_replay`, which claims it first:
    two operators replaying at once run it once. Returns the event as stored afterwards.
    """
    event = _reopen(actor=actor, event_id=event_id)
    letter_ids = list(
        DeadLetter.objects.filter(
            kind=DEAD_LETTER_KIND, reference=event.pk, replayed_at__isnull=True
        ).values_list("pk", flat=True)
    )
    if letter_ids:
        for letter_id in letter_ids:
            dead_letter_replay(dead_letter_id=letter_id)
    else:
        webhook_event_process(event_id=event.pk)
    event.refresh_from_db()
    return event


@transaction.atomic(durable=True)
def _reopen(*, actor: Actor, event_id: str) -> WebhookEvent:
    event = _lock(event_id)
    if event.status == Status.PROCESSED:
        raise WebhookEventAlreadyProcessed(f"{event.pk} was already applied: {event.outcome}")
    if event.status == Status.RECEIVED:
        return event
    before = {"status": event.status, "attempts": event.attempts}
    event.status, event.attempts, event.next_attempt_at = Status.RECEIVED, 0, None
    event.save(update_fields=["status", "attempts", "next_attempt_at"])
    audit_record(
        actor=actor,
        action="webhook_event.replay",
        entity_type="webhook_event",
        entity_id=event.pk,
        before=before,
        after={"status": event.status, "provider_event_id": event.provider_event_id, "type": event.type},
    )
    return event


class WebhookReplayFailed(Exception):
    pass


@replayer(DEAD_LETTER_KIND)
def _replay_dead_letter(letter: DeadLetter) -> None:
    _reopen(actor=None, event_id=letter.reference)
    event = webhook_event_process(event_id=letter.reference)
    if event.status not in (Status.PROCESSED, Status.IGNORED):
        raise WebhookReplayFailed(f"{event.pk} is {event.status}: {event.last_error}")


def webhook_events_sweep(*, older_than: timedelta | None = None, limit: int = 500) -> int:
    """Queues again what no task is coming for: events stored while the broker was down, retries
    lost with a worker. Queuing twice is harmless (processing locks the event and skips a done one)."""
    grace = older_than if older_than is not None else timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    cutoff = timezone.now() - grace
    due = Q(status=Status.RECEIVED, received_at__lte=cutoff) | Q(
        status=Status.FAILED, next_attempt_at__lte=cutoff
    )
    event_ids = list(
        WebhookEvent.objects.filter(due).order_by("received_at").values_list("pk", flat=True)[:limit]
    )
    for event_id in event_ids:
        _enqueue(event_id)
    return len(event_ids)
