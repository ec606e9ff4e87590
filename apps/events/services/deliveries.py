"""Sending deliveries: claim, POST, record — the schedule kept in the database, never in the broker.

    send task (after the consumer's commit, a manual retry, or the sweep) ─► for each delivery:
      claim: one UPDATE … WHERE id = (… FOR UPDATE SKIP LOCKED), committed: the lease is ours
      POST (no transaction, no lock; apps.events.transport bounds time, address and answer)
      record: the attempt row, and the delivery succeeded / pending with its next time / failed

The claim is what makes a delivery go out once at a time: only the worker whose UPDATE set the
lease sends; a duplicate task, the sweep or a second worker finds it leased (or locked: SKIP
LOCKED) and moves on. A worker that dies mid-send leaves the lease to expire
(OUTBOUND_WEBHOOK_LEASE_SECONDS), then the sweep sends it again: at least once, so receivers
dedupe by event id. Retries wait OUTBOUND_WEBHOOK_RETRY_BASE_SECONDS plus `backoff_delay` (the one
backoff policy, full jitter) and are picked up by the beat sweep when due — no Celery countdown, so
no ETA outlives RabbitMQ's consumer_timeout (celery/celery#6760). After
OUTBOUND_WEBHOOK_RETRY_WINDOW_SECONDS (3 days) the delivery is `failed`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.core.actors import Actor
from apps.core.deferred import backoff_delay
from apps.events import transport
from apps.events.errors import WebhookEndpointDisabled
from apps.events.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint
from apps.events.serializers import event_representation
from apps.events.services.endpoints import live_secrets, webhook_endpoint_disable_failing
from apps.events.services.publishing import send_soon
from apps.events.signing import HEADER, signature_header

logger = logging.getLogger(__name__)
D = WebhookDelivery.Status

# Outcomes of one attempt, as the metric `paydesk_webhook_deliveries_total{outcome}` counts them.
SUCCEEDED, RETRYING, FAILED = "succeeded", "retrying", "failed"


@dataclass(frozen=True)
class Sent:
    delivery_id: str
    outcome: str  # SUCCEEDED, RETRYING or FAILED
    status_code: int | None
    error: str


def _claim(delivery_id: str, *, now: datetime) -> datetime | None:
    """Takes the lease of a due, unheld, pending delivery of an enabled endpoint; returns the
    lease's end (the claim's token), or None if it is not ours to send now."""
    lease = now + timedelta(seconds=settings.OUTBOUND_WEBHOOK_LEASE_SECONDS)
    table = WebhookDelivery._meta.db_table
    endpoints = WebhookEndpoint._meta.db_table
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET lease_expires_at = %s, updated_at = %s WHERE id = ("  # noqa: S608  # nosec B608: table and column names of our models, values as parameters
            f"SELECT d.id FROM {table} d JOIN {endpoints} e ON e.id = d.endpoint_id "
            "WHERE d.id = %s AND d.status = 'pending' AND d.next_attempt_at <= %s "
            "AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= %s) AND e.status = 'enabled' "
            "FOR UPDATE OF d SKIP LOCKED) RETURNING id",
            [lease, now, delivery_id, now, now],
        )
        return lease if cursor.fetchone() else None


def deliveries_send(*, delivery_ids: list[str]) -> list[Sent]:
    """Sends each of these deliveries that is ours to send now (see the module); one at a time,
    each claimed just before its POST, so no lease runs out while it waits its turn."""
    results = []
    for delivery_id in delivery_ids:
        lease = _claim(delivery_id, now=timezone.now())
        if lease is None:
            continue
        delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
        body = json.dumps(event_representation(delivery.event), separators=(",", ":")).encode()
        started_at = timezone.now()
        headers = {
            HEADER: signature_header(
                secrets_=live_secrets(delivery.endpoint), timestamp=int(time.time()), body=body
            ),
            "Paydesk-Delivery": delivery.pk,
        }
        outcome = transport.post(delivery.endpoint.url, body=body, headers=headers)
        results.append(_record(delivery, lease=lease, started_at=started_at, outcome=outcome))
    return results


def next_attempt_delay(attempt: int) -> float:
    """Seconds before retry number `attempt` (1: the first): the base, plus the core's backoff."""
    base = float(settings.OUTBOUND_WEBHOOK_RETRY_BASE_SECONDS)
    return base + backoff_delay(
        attempt=attempt, base=base, maximum=float(settings.OUTBOUND_WEBHOOK_RETRY_MAX_SECONDS)
    )


@transaction.atomic(durable=True)
def _record(
    delivery: WebhookDelivery, *, lease: datetime, started_at: datetime, outcome: transport.Outcome
) -> Sent:
    """The attempt and what it makes of the delivery (and of its endpoint), in one transaction."""
    now = timezone.now()
    row = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    number = row.attempts + 1
    DeliveryAttempt.objects.create(
        delivery=row,
        number=number,
        started_at=started_at,
        status_code=outcome.status_code,
        latency_ms=outcome.latency_ms,
        succeeded=outcome.succeeded,
        error=outcome.error,
    )
    still_ours = row.status == D.PENDING and row.lease_expires_at == lease
    fields: dict[str, Any] = {
        "attempts": number,
        "last_attempt_at": started_at,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "updated_at": now,
    }
    if outcome.succeeded:
        fields |= {"status": D.SUCCEEDED, "next_attempt_at": None, "lease_expires_at": None}
        result = SUCCEEDED
        WebhookEndpoint.objects.filter(pk=row.endpoint_id, failing_since__isnull=False).update(
            failing_since=None
        )
    elif still_ours:
        window_ends = row.created_at + timedelta(seconds=settings.OUTBOUND_WEBHOOK_RETRY_WINDOW_SECONDS)
        if now >= window_ends:
            fields |= {"status": D.FAILED, "next_attempt_at": None, "lease_expires_at": None}
            result = FAILED
        else:
            retry_at = min(now + timedelta(seconds=next_attempt_delay(number)), window_ends)
            fields |= {"next_attempt_at": retry_at, "lease_expires_at": None}
            result = RETRYING
        WebhookEndpoint.objects.filter(pk=row.endpoint_id, failing_since__isnull=True).update(
            failing_since=now
        )
        webhook_endpoint_disable_failing(endpoint_id=row.endpoint_id)
    else:
        result = RETRYING if row.status == D.PENDING else row.status  # another worker took over
    WebhookDelivery.objects.filter(pk=row.pk).update(**fields)
    transaction.on_commit(lambda: _count(result))
    return Sent(row.pk, result, outcome.status_code, outcome.error)


def _count(outcome: str) -> None:
    from apps.events.metrics import DELIVERIES

    DELIVERIES.labels(outcome=outcome).inc()


@transaction.atomic(durable=True)
def webhook_delivery_retry(*, actor: Actor, delivery_id: str, user: Any) -> WebhookDelivery:
    """POST /webhook-deliveries/{id}/retry: a new attempt now, whatever the delivery's status (a
    succeeded one is sent again: the receiver dedupes by event id). One being sent right now is
    left to that attempt. Its automatic retries go on only while its 3-day window is open."""
    from apps.events.selectors import webhook_delivery_get

    delivery = webhook_delivery_get(user=user, delivery_id=delivery_id)
    row = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    if row.endpoint.status != WebhookEndpoint.Status.ENABLED:
        raise WebhookEndpointDisabled(param="id")
    now = timezone.now()
    sending = row.status == D.PENDING and row.lease_expires_at is not None and row.lease_expires_at > now
    if not sending:
        WebhookDelivery.objects.filter(pk=row.pk).update(
            status=D.PENDING, next_attempt_at=now, lease_expires_at=None, updated_at=now
        )
        transaction.on_commit(lambda: send_soon([row.pk]))
    audit_record(
        actor=actor,
        action="webhook_delivery.retry",
        entity_type="webhook_delivery",
        entity_id=row.pk,
        before={"status": row.status},
        after={"status": D.PENDING},
    )
    return webhook_delivery_get(user=user, delivery_id=delivery_id)


SWEEP_LIMIT = 500
SWEEP_TASK_SIZE = 20
FIRST_SEND_GRACE = timedelta(seconds=30)


def deliveries_sweep() -> int:
    """Queues the sends of every delivery that is due (retries) or whose first send was lost, in
    tasks of SWEEP_TASK_SIZE; returns how many were queued."""
    from apps.events.selectors import deliveries_due

    due = deliveries_due(now=timezone.now(), first_send_grace=FIRST_SEND_GRACE, limit=SWEEP_LIMIT)
    chunks = [due[start : start + SWEEP_TASK_SIZE] for start in range(0, len(due), SWEEP_TASK_SIZE)]
    return sum(len(chunk) for chunk in chunks if send_soon(chunk))
