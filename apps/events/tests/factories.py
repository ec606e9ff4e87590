"""Objects of the events app for tests that need some without running a delivery."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.core.ids import new_id
from apps.events.models import Event, WebhookDelivery, WebhookEndpoint
from apps.events.services import webhook_endpoint_create


def webhook_endpoint_and_delivery(user: Any) -> tuple[WebhookEndpoint, WebhookDelivery]:
    """An endpoint of `user` (a public URL) and a failed delivery to it of one of `user`'s events,
    as the consumer and a sender would have left them."""
    endpoint = webhook_endpoint_create(
        actor=user, user=user, url="https://hooks.example.com/paydesk", enabled_events=["*"]
    ).endpoint
    event = Event.objects.create(
        user=user,
        type="payment.succeeded",
        source_event_id=new_id("evt"),
        data={"object": {"id": "pay_test", "object": "payment"}},
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=event,
        status=WebhookDelivery.Status.FAILED,
        attempts=1,
        last_attempt_at=timezone.now(),
        last_status_code=500,
        last_error="answered 500",
    )
    return endpoint, delivery
