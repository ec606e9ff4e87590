"""The event, webhook endpoint and delivery objects of API.md, each declared once: what the API
returns, what the schema documents and (the event) the body of every delivery."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import ConstantField, OptionalTextField, OutputSerializer, TimestampField
from apps.events.models import DeliveryAttempt, Event, WebhookDelivery


class EventCauseSerializer(serializers.Serializer):
    correlation_id = serializers.CharField(allow_null=True)
    idempotency_key = serializers.CharField(allow_null=True)


@extend_schema_field(EventCauseSerializer)
class EventRequestField(serializers.Field):
    """The request that caused the event, when it was this principal's own (else both null)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, event: Event) -> dict[str, Any]:
        return {
            "correlation_id": event.request_correlation_id or None,
            "idempotency_key": event.request_idempotency_key or None,
        }


class EventOutputSerializer(OutputSerializer):
    """The event object (also the body POSTed to webhook endpoints)."""

    id = serializers.CharField(source="pk")
    object = ConstantField("event")
    type = serializers.CharField()
    created_at = TimestampField()
    data = serializers.DictField(help_text='{"object": the resource as this API returns it}')  # type: ignore[assignment]  # a declared field (DRF moves it off the class), not `.data`
    request = EventRequestField()


def event_representation(event: Event) -> dict[str, Any]:
    return EventOutputSerializer.represent(event)


class WebhookEndpointOutputSerializer(OutputSerializer):
    """The webhook endpoint object (its secret only in the answers that make one)."""

    id = serializers.CharField(source="pk")
    object = ConstantField("webhook_endpoint")
    url = serializers.CharField()
    enabled_events = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(help_text="enabled | disabled")
    description = OptionalTextField()
    disabled_reason = OptionalTextField()
    created_at = TimestampField()
    updated_at = TimestampField()


class WebhookEndpointWithSecretSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(help_text="`whsec_…`: shown in this answer only; keep it.")


class DeliveryAttemptSerializer(OutputSerializer):
    number = serializers.IntegerField()
    attempted_at = TimestampField(source="started_at")
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    succeeded = serializers.BooleanField()
    error = OptionalTextField()


@extend_schema_field(DeliveryAttemptSerializer(many=True))
class AttemptsField(serializers.Field):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, delivery: WebhookDelivery) -> list[dict[str, Any]]:
        attempts: list[DeliveryAttempt] = list(delivery.attempt_log.all())
        return [DeliveryAttemptSerializer.represent(attempt) for attempt in attempts]


class WebhookDeliveryOutputSerializer(OutputSerializer):
    """The webhook delivery object: its status and every attempt so far."""

    id = serializers.CharField(source="pk")
    object = ConstantField("webhook_delivery")
    endpoint = serializers.CharField(source="endpoint_id")
    event = serializers.CharField(source="event_id")
    event_type = serializers.CharField(source="event.type")
    status = serializers.CharField(help_text="pending | succeeded | failed")
    attempts = serializers.IntegerField(help_text="How many attempts were made.")
    attempt_log = AttemptsField(help_text="Each attempt, oldest first: status code, latency, error.")
    next_attempt_at = TimestampField(allow_null=True)
    last_attempt_at = TimestampField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = OptionalTextField()
    created_at = TimestampField()
