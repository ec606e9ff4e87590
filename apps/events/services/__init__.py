"""Every write of the events app: public events from the outbox, endpoints, deliveries, retention."""

from apps.events.services.deliveries import (
    FAILED,
    RETRYING,
    SUCCEEDED,
    Sent,
    deliveries_send,
    deliveries_sweep,
    next_attempt_delay,
    webhook_delivery_retry,
)
from apps.events.services.endpoints import (
    EndpointWithSecret,
    live_secrets,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_disable_failing,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from apps.events.services.publishing import deliveries_create, events_publish, send_soon, subscribed
from apps.events.services.retention import events_purge, retention_cutoff

__all__ = [
    "FAILED",
    "RETRYING",
    "SUCCEEDED",
    "EndpointWithSecret",
    "Sent",
    "deliveries_create",
    "deliveries_send",
    "deliveries_sweep",
    "events_publish",
    "events_purge",
    "live_secrets",
    "next_attempt_delay",
    "retention_cutoff",
    "send_soon",
    "subscribed",
    "webhook_delivery_retry",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_disable_failing",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_update",
]
