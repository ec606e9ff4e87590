"""Outbox events become public events, and public events become deliveries.

Runs inside the outbox consumer's transaction (apps.events.consumers), a whole batch at a time, in
a number of statements that does not grow with the batch: one per resource type to load the
objects (SQL written once: no query compilation per batch), then ONE statement that inserts every
event — each with the Idempotency-Key of the request behind it, looked up in the same statement —
and returns the enabled endpoints of their principals. Only when there are any, one more INSERT
writes the deliveries, and their send is queued after commit as one task. Events of types nobody
can see never get here (the consumer is registered for the public types only).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.core.deferred import enqueue
from apps.core.idempotency import request_key_sql
from apps.core.ids import new_pk
from apps.core.models import OutboxEvent
from apps.core.outbox import ALL_EVENTS
from apps.events.models import Event, WebhookDelivery, WebhookEndpoint
from apps.events.renderers import Renderer, renderer_for, represent

logger = logging.getLogger(__name__)

_INSERT_EVENTS: list[str] = []
_INSERT_DELIVERIES: list[str] = []


def _insert_events_sql() -> str:
    if not _INSERT_EVENTS:
        key = request_key_sql(correlation_id="u.cid", principal="u.user_id", before="u.created_at")
        _INSERT_EVENTS.append(
            f"WITH ev AS (INSERT INTO {Event._meta.db_table} "  # noqa: S608  # nosec B608: table and column names of our models, values as parameters
            "(id, user_id, type, source_event_id, created_at, data, request_correlation_id, "
            "request_idempotency_key) "
            f"SELECT u.id, u.user_id, u.type, u.source, u.created_at, u.data, u.cid, {key} "
            # the rows as one JSON document: one parameter, quoted once (arrays of JSON text would
            # be escaped element by element, character by character, by the client-side binding)
            "FROM jsonb_to_recordset(%s::jsonb) AS u(id varchar, user_id varchar, type varchar, "
            "source varchar, created_at timestamptz, data jsonb, cid varchar) "
            # an outbox event delivered again after its consumed record was lost writes nothing twice
            "ON CONFLICT (source_event_id, user_id) DO NOTHING "
            "RETURNING id, user_id, type) "
            f"SELECT ev.id, ev.type, e.id, e.enabled_events FROM ev JOIN {WebhookEndpoint._meta.db_table} e "
            "ON e.user_id = ev.user_id AND e.status = 'enabled'"
        )
    return _INSERT_EVENTS[0]


def events_publish(*, outbox_events: Sequence[OutboxEvent]) -> int:
    """Writes the public events of these outbox events (one per principal who sees each) and their
    deliveries; returns how many events the batch holds (one already written is left as it was)."""
    plan: list[tuple[OutboxEvent, Renderer, str, str]] = []
    wanted: dict[str, tuple[Renderer, set[str]]] = {}
    for outbox_event in outbox_events:
        found = renderer_for(outbox_event.event_type)
        object_id = found[1].object_id(outbox_event) if found else None
        if found is None or not object_id:
            continue
        name, renderer = found
        plan.append((outbox_event, renderer, name, object_id))
        wanted.setdefault(name, (renderer, set()))[1].add(object_id)
    if not plan:
        return 0
    objects = {name: renderer.load(sorted(ids)) for name, (renderer, ids) in wanted.items()}
    rows: list[dict[str, Any]] = []
    for outbox_event, renderer, name, object_id in plan:
        obj = objects[name].get(object_id)
        if obj is None:
            logger.warning(
                "%s %s: its %s %s is gone", outbox_event.event_type, outbox_event.pk, name, object_id
            )
            continue
        data = {"object": represent(renderer, obj, outbox_event.payload)}
        created_at = outbox_event.created_at.isoformat()
        rows.extend(
            {
                "id": new_pk(Event),
                "user_id": recipient.user_id,
                "type": outbox_event.event_type,
                "source": outbox_event.pk,
                "created_at": created_at,
                "data": data,
                "cid": outbox_event.correlation_id if recipient.own_request else "",
            }
            for recipient in renderer.recipients(obj)
        )
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_insert_events_sql(), [json.dumps(rows, separators=(",", ":"))])
        matches = cursor.fetchall()
    if matches:
        deliveries_create(matches=matches)
    return len(rows)


def subscribed(enabled_events: Any, event_type: str) -> bool:
    if isinstance(enabled_events, str):
        enabled_events = json.loads(enabled_events)
    return isinstance(enabled_events, list) and (ALL_EVENTS in enabled_events or event_type in enabled_events)


def deliveries_create(*, matches: Sequence[tuple[str, str, str, Any]]) -> list[str]:
    """A pending delivery for each (event id, event type, enabled endpoint id, its enabled_events)
    whose endpoint subscribed to the type, with one INSERT, and one send task for all of them
    queued after commit."""
    pairs = [
        (event_id, endpoint_id)
        for event_id, event_type, endpoint_id, enabled in matches
        if subscribed(enabled, event_type)
    ]
    if not pairs:
        return []
    if not _INSERT_DELIVERIES:
        _INSERT_DELIVERIES.append(
            f"INSERT INTO {WebhookDelivery._meta.db_table} "  # noqa: S608  # nosec B608: table and column names of our models, values as parameters
            "(id, event_id, endpoint_id, status, attempts, next_attempt_at, last_error, created_at, updated_at) "
            "SELECT u.id, u.event_id, u.endpoint_id, 'pending', 0, %s, '', %s, %s "
            "FROM unnest(%s::varchar[], %s::varchar[], %s::varchar[]) AS u(id, event_id, endpoint_id)"
        )
    now = timezone.now()
    ids = [new_pk(WebhookDelivery) for _ in pairs]
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_DELIVERIES[0],
            [now, now, now, ids, [event for event, _ in pairs], [endpoint for _, endpoint in pairs]],
        )
    transaction.on_commit(lambda: send_soon(ids))
    return ids


def send_soon(delivery_ids: list[str]) -> bool:
    """Queues the send of these deliveries; if the broker is down, the sweep sends them."""
    from apps.events.tasks import send_webhook_deliveries

    return enqueue(send_webhook_deliveries, delivery_ids, fallback="the webhook-deliveries sweep")
