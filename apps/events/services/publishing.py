"""Outbox events become public events, and public events become deliveries.

Runs inside the outbox consumer's transaction (apps.events.consumers), a whole batch at a time and
at a bounded number of queries whatever its size: the objects of each resource type (one query per
type), the Idempotency-Keys behind the events (one), the INSERT of the events (one), the enabled
endpoints of their principals (one) and, only when there are any, the INSERT of the deliveries
(one), whose send is queued after commit as one task. Events of types nobody can see never get
here (the consumer is registered for the public types only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.deferred import enqueue
from apps.core.idempotency import request_keys
from apps.core.models import OutboxEvent
from apps.core.outbox import ALL_EVENTS
from apps.events.models import Event, WebhookDelivery, WebhookEndpoint
from apps.events.renderers import Renderer, renderer_for, represent

logger = logging.getLogger(__name__)


def events_publish(*, outbox_events: Sequence[OutboxEvent]) -> list[Event]:
    """Writes the public events of these outbox events (one per principal who sees each) and their
    deliveries; returns the events written."""
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
        return []
    objects = {name: renderer.load(sorted(ids)) for name, (renderer, ids) in wanted.items()}
    events: list[Event] = []
    for outbox_event, renderer, name, object_id in plan:
        obj = objects[name].get(object_id)
        if obj is None:
            logger.warning(
                "%s %s: its %s %s is gone", outbox_event.event_type, outbox_event.pk, name, object_id
            )
            continue
        data = {"object": represent(renderer, obj, outbox_event.payload)}
        for recipient in renderer.recipients(obj):
            events.append(
                Event(
                    user_id=recipient.user_id,
                    type=outbox_event.event_type,
                    source_event_id=outbox_event.pk,
                    created_at=outbox_event.created_at,
                    data=data,
                    request_correlation_id=outbox_event.correlation_id if recipient.own_request else "",
                )
            )
    _attach_idempotency_keys(events)
    Event.objects.bulk_create(events)
    deliveries_create(events=events)
    return events


def _attach_idempotency_keys(events: list[Event]) -> None:
    """Each event's `request.idempotency_key`: the key its principal sent with the request that
    caused it (the latest keyed request of that correlation id claimed no later than the event)."""
    candidates: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for cid, principal, key, claimed_at in request_keys(
        correlation_ids={event.request_correlation_id for event in events}
    ):
        candidates.setdefault((cid, principal), []).append((claimed_at, key))
    if not candidates:
        return
    for event in events:
        found = candidates.get((event.request_correlation_id, str(event.user_id)))
        earlier = [item for item in found or [] if item[0] <= event.created_at]
        if earlier:
            event.request_idempotency_key = max(earlier)[1]


def subscribed(enabled_events: Any, event_type: str) -> bool:
    return isinstance(enabled_events, list) and (ALL_EVENTS in enabled_events or event_type in enabled_events)


def deliveries_create(*, events: Sequence[Event]) -> list[str]:
    """A pending delivery of each event to each enabled endpoint of its principal subscribed to its
    type, written with one INSERT, and one send task for all of them queued after commit."""
    endpoints: dict[str, list[tuple[str, Any]]] = {}
    rows = WebhookEndpoint.objects.filter(
        user_id__in={event.user_id for event in events}, status=WebhookEndpoint.Status.ENABLED
    ).values_list("pk", "user_id", "enabled_events")
    for endpoint_id, user_id, enabled_events in rows:
        endpoints.setdefault(user_id, []).append((endpoint_id, enabled_events))
    if not endpoints:
        return []
    now = timezone.now()
    deliveries = [
        WebhookDelivery(
            endpoint_id=endpoint_id, event=event, next_attempt_at=now, created_at=now, updated_at=now
        )
        for event in events
        for endpoint_id, enabled_events in endpoints.get(event.user_id, [])
        if subscribed(enabled_events, event.type)
    ]
    if not deliveries:
        return []
    WebhookDelivery.objects.bulk_create(deliveries)
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: send_soon(ids))
    return ids


def send_soon(delivery_ids: list[str]) -> bool:
    """Queues the send of these deliveries; if the broker is down, the sweep sends them."""
    from apps.events.tasks import send_webhook_deliveries

    return enqueue(send_webhook_deliveries, delivery_ids, fallback="the webhook-deliveries sweep")
