"""The outbox consumer that makes public events: one per batch of outbox events, registered for
the public types only (apps.events.renderers), so events nobody can see cost it nothing."""

from __future__ import annotations

from apps.core.models import OutboxEvent
from apps.core.outbox import batch_consumer
from apps.events.renderers import public_event_types
from apps.events.services import events_publish


@batch_consumer(*public_event_types(), name="events")
def publish_all(events: list[OutboxEvent]) -> None:
    """The public events and webhook deliveries of a delivery's outbox events, written together."""
    events_publish(outbox_events=events)
