"""The raw-log sink: every gateway exchange and notification outcome, copied to MongoDB.

    gateway call (payment or deposit) ─ GatewayAttempt row + `payment.gateway_exchange` event (outbox)
    notification send (transaction) ─ `notification.sent` / `notification.failed` event (outbox)
        └► consumer "audit.raw_log" queues `apps.audit.tasks.write_raw_logs(event_ids)` (queue
           raw_logs), one task for the events of a delivery
              └► one document per event, `_id` = the event id, upserted into MongoDB (one bulk
                 write per collection)

The payment path only writes an event row in the transaction it already has: it never waits for
MongoDB, and nothing is lost while MongoDB (or the broker) is down. The event is in PostgreSQL
until the sink has it; the task retries with backoff, and after RAW_LOG_MAX_ATTEMPTS leaves a
dead letter (kind "raw_log") per event whose replay queues the write again. Writing a document
twice (a retried task, a replay) leaves one copy. With MONGO_URL empty the consumer is off: its
events are not even handed to a worker (apps.core.outbox `when`).

A gateway exchange is scrubbed (apps.core.scrubbing) when its event is written, and every document
again before it leaves for MongoDB.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.audit import mongo
from apps.core.dead_letters import dead_letter_record, replayer
from apps.core.models import DeadLetter, OutboxEvent
from apps.core.outbox import batch_consumer, emit_event
from apps.core.scrubbing import scrub

logger = logging.getLogger(__name__)

GATEWAY_EXCHANGE = "payment.gateway_exchange"
COLLECTION_OF = {
    GATEWAY_EXCHANGE: mongo.GATEWAY_EXCHANGES,
    "notification.sent": mongo.NOTIFICATION_LOGS,
    "notification.failed": mongo.NOTIFICATION_LOGS,
}
DEAD_LETTER_KIND = "raw_log"


def raw_log_gateway_exchange(*, subject: Any, attempt: Any, outcome: Any) -> OutboxEvent:
    """Announces one call to a gateway, inside the transaction that records its GatewayAttempt.

    `subject` is what the call was for (a payment, or a deposit's `ChargeSubject`); its id goes
    under the payload key `payment` (documented in docs/events.md, read by the raw-log documents'
    `payment_id` and by `raw_logs --payment`). `outcome` is the gateway's GatewayResult or the
    GatewayError it raised. The request is what Paydesk asked for (never the payment method token);
    the response is the gateway's own answer.
    """
    return emit_event(
        event_type=GATEWAY_EXCHANGE,
        aggregate=attempt,
        payload=scrub(
            {
                "payment": subject.pk,
                "attempt": attempt.pk,
                "gateway": subject.gateway,
                "operation": attempt.operation,
                "idempotency_key": attempt.idempotency_key,
                "outcome": attempt.outcome,
                "error_code": attempt.error_code,
                "latency_ms": attempt.latency_ms,
                "request": _request(subject, attempt),
                "response": _response(outcome),
                "occurred_at": attempt.created_at.isoformat(),
            }
        ),
    )


def _request(subject: Any, attempt: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "operation": attempt.operation,
        "idempotency_key": attempt.idempotency_key,
        "reference": subject.gateway_reference or None,
        "currency": subject.currency,
    }
    if attempt.operation == "authorize":
        request["amount"] = subject.amount
        request["capture_method"] = subject.capture_method
    elif attempt.operation == "capture":
        request["amount"] = subject.operation_amount
    elif attempt.operation == "refund":
        request["refund"] = attempt.idempotency_key
    return request


def _response(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, Exception):
        return {
            "error": {
                "type": type(outcome).__name__,
                "code": getattr(outcome, "code", "gateway_error"),
                "message": str(outcome)[:1000],
            }
        }
    return {
        "status": outcome.status,
        "reference": outcome.reference,
        "failure_code": outcome.failure_code or None,
        "raw": outcome.raw,
    }


def raw_log_document(event: OutboxEvent) -> dict[str, Any]:
    """The MongoDB document of an event: its payload, keyed and indexed for investigation."""
    payload = event.payload
    common = {
        "_id": event.pk,
        "event_type": event.event_type,
        "correlation_id": payload.get("correlation_id") or event.correlation_id or None,
        "payment_id": payload.get("payment") or None,
        "logged_at": timezone.now(),
    }
    if event.event_type == GATEWAY_EXCHANGE:
        return scrub(
            {
                **payload,
                **common,
                "attempt_id": payload.get("attempt"),
                "occurred_at": _timestamp(payload.get("occurred_at")) or event.created_at,
            }
        )
    return scrub(
        {
            **payload,
            **common,
            "notification_id": payload.get("notification"),
            "user_id": payload.get("user"),
            "occurred_at": event.created_at,
        }
    )


def _timestamp(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def raw_log_write(*, event_id: str) -> bool:
    """Copies one event to MongoDB; False when the sink is off or the event is unknown."""
    return raw_log_write_many(event_ids=[event_id]) == 1


def raw_log_write_many(*, event_ids: list[str]) -> int:
    """Copies the events to MongoDB, one bulk write per collection; returns how many were written
    (0 when the sink is off; unknown ids are skipped).

    pymongo's errors propagate: the task decides whether to retry or give up.
    """
    if not mongo.enabled():
        return 0
    documents: dict[str, list[dict[str, Any]]] = {}
    for event in OutboxEvent.objects.filter(pk__in=event_ids, event_type__in=list(COLLECTION_OF)):
        documents.setdefault(COLLECTION_OF[event.event_type], []).append(raw_log_document(event))
    for name, batch in documents.items():
        mongo.upsert_many(name, batch)
    return sum(len(batch) for batch in documents.values())


def raw_log_give_up(*, event_id: str, error: Exception, attempts: int) -> DeadLetter:
    logger.error("raw log of event %s not written after %d attempts: %s", event_id, attempts, error)
    return dead_letter_record(
        kind=DEAD_LETTER_KIND,
        reference=event_id,
        reason=f"MongoDB write failed {attempts} times: {type(error).__name__}: {error}",
        payload={"event": event_id},
        attempts=attempts,
    )


def raw_log_find(*, payment_id: str | None = None, correlation_id: str | None = None) -> list[dict[str, Any]]:
    """Every raw document of a payment (gateway exchanges and emails about it) or of a request."""
    query: dict[str, Any] = {"payment_id": payment_id} if payment_id else {"correlation_id": correlation_id}
    return [
        doc for name in (mongo.GATEWAY_EXCHANGES, mongo.NOTIFICATION_LOGS) for doc in mongo.find(name, query)
    ]


@batch_consumer(*COLLECTION_OF, name="audit.raw_log", when=mongo.enabled)
def _queue_raw_logs(events: list[OutboxEvent]) -> None:
    # Queued from inside the consumer, not after its commit: if the broker refuses, the consumer
    # fails and the outbox delivers the events again. A write queued twice upserts the same _ids.
    from apps.audit.tasks import write_raw_logs

    write_raw_logs.apply_async(args=[[event.pk for event in events]])


@replayer(DEAD_LETTER_KIND)
def _replay(letter: DeadLetter) -> None:
    from apps.audit.tasks import write_raw_logs

    write_raw_logs.apply_async(args=[[letter.reference]])
