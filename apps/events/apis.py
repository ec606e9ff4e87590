"""HTTP for events and outbound webhooks (API.md "Outbound webhooks and events"): parse, call one
service or selector, serialize. Creating an endpoint and rotating its secret take no
Idempotency-Key: their answer holds the secret, which is never stored in clear, so no answer is
kept for a replay."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.selectors import authenticated_user, request_actor
from apps.core.fields import TextField
from apps.core.outbox import ALL_EVENTS
from apps.core.pagination import PAGE_PARAMETERS, page_body, page_params, page_schema, paginate
from apps.core.schema import blank_or, error_responses
from apps.core.serializers import InputSerializer
from apps.events import selectors, services
from apps.events.addresses import MAX_URL_LENGTH
from apps.events.models import WebhookDelivery, WebhookEndpoint
from apps.events.renderers import public_event_types
from apps.events.serializers import (
    EventOutputSerializer,
    WebhookDeliveryOutputSerializer,
    WebhookEndpointOutputSerializer,
    WebhookEndpointWithSecretSerializer,
)


@extend_schema_field({"type": "string", "format": "uri", "maxLength": MAX_URL_LENGTH})
class UrlField(serializers.Field):
    """Passed as sent: the service's URL rules answer `url_invalid` for anything they refuse."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:  # not documented as nullable, yet answered by the service's own error
            return False, None
        return super().validate_empty_values(data)

    def to_internal_value(self, data: Any) -> Any:
        return data


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "minItems": 1, "items": {"type": "string", "enum": public_event_types()}},
            {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {"type": "string", "enum": [ALL_EVENTS]},
            },
        ],
        "description": 'Event types, or ["*"] (alone) for all of them (docs/events.md).',
    }
)
class EventTypesField(serializers.Field):
    """Passed as sent: the service answers `event_type_unknown` for anything it refuses."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:  # not documented as nullable, yet answered by the service's own error
            return False, None
        return super().validate_empty_values(data)

    def to_internal_value(self, data: Any) -> Any:
        return data


class NoBody(InputSerializer):
    """A call that takes no body refuses one with fields (400 `parameter_unknown`)."""


def _no_body(request: Request) -> None:
    NoBody(data=request.data if isinstance(request.data, dict) else {}).is_valid(raise_exception=True)


@extend_schema_field({"type": "string", "enum": WebhookEndpoint.Status.values})
class EndpointStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=WebhookEndpoint.Status.choices, **kwargs)


class _EndpointFields(InputSerializer):
    url = UrlField()
    enabled_events = EventTypesField()
    description = TextField(max_length=500, required=False, allow_blank=True)


def _with_secret(result: services.EndpointWithSecret) -> dict[str, Any]:
    return {**WebhookEndpointOutputSerializer.represent(result.endpoint), "secret": result.secret}


class EventsApi(APIView):
    @extend_schema(
        operation_id="events_list",
        parameters=[
            OpenApiParameter(
                "type", blank_or({"type": "string", "enum": public_event_types()}), required=False
            ),
            OpenApiParameter(
                "created_gte", blank_or({"type": "string", "format": "date-time"}), required=False
            ),
            OpenApiParameter(
                "created_lt", blank_or({"type": "string", "format": "date-time"}), required=False
            ),
            *PAGE_PARAMETERS,
        ],
        responses={200: page_schema("EventList", EventOutputSerializer), **error_responses(400, 401)},
    )
    def get(self, request: Request) -> Response:
        params = page_params(request.query_params)
        queryset = selectors.event_list(user=authenticated_user(request), filters=request.query_params)
        return Response(page_body(paginate(queryset, params), EventOutputSerializer))


class EventDetailApi(APIView):
    @extend_schema(
        operation_id="events_retrieve", responses={200: EventOutputSerializer, **error_responses(401, 404)}
    )
    def get(self, request: Request, event_id: str) -> Response:
        event = selectors.event_get(user=authenticated_user(request), event_id=event_id)
        return Response(EventOutputSerializer.represent(event))


class WebhookEndpointsApi(APIView):
    class CreateInputSerializer(_EndpointFields):
        pass

    @extend_schema(
        operation_id="webhook_endpoints_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_schema("WebhookEndpointList", WebhookEndpointOutputSerializer),
            **error_responses(400, 401),
        },
    )
    def get(self, request: Request) -> Response:
        params = page_params(request.query_params)
        queryset = selectors.webhook_endpoint_list(user=authenticated_user(request))
        return Response(page_body(paginate(queryset, params), WebhookEndpointOutputSerializer))

    @extend_schema(
        operation_id="webhook_endpoints_create",
        request=CreateInputSerializer,
        responses={201: WebhookEndpointWithSecretSerializer, **error_responses(400, 401)},
    )
    def post(self, request: Request) -> Response:
        serializer = self.CreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.webhook_endpoint_create(
            actor=request_actor(request), user=authenticated_user(request), **serializer.validated_data
        )
        return Response(_with_secret(result), status=201)


class WebhookEndpointDetailApi(APIView):
    class UpdateInputSerializer(_EndpointFields):
        url = UrlField(required=False)
        enabled_events = EventTypesField(required=False)
        status = EndpointStatusField(required=False)

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        responses={200: WebhookEndpointOutputSerializer, **error_responses(401, 404)},
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        endpoint = selectors.webhook_endpoint_get(user=authenticated_user(request), endpoint_id=endpoint_id)
        return Response(WebhookEndpointOutputSerializer.represent(endpoint))

    @extend_schema(
        operation_id="webhook_endpoints_update",
        request=UpdateInputSerializer,
        responses={200: WebhookEndpointOutputSerializer, **error_responses(400, 401, 404)},
    )
    def patch(self, request: Request, endpoint_id: str) -> Response:
        serializer = self.UpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(
            actor=request_actor(request),
            user=authenticated_user(request),
            endpoint_id=endpoint_id,
            changes=dict(serializer.validated_data),
        )
        return Response(WebhookEndpointOutputSerializer.represent(endpoint))

    @extend_schema(
        operation_id="webhook_endpoints_delete", responses={204: None, **error_responses(401, 404)}
    )
    def delete(self, request: Request, endpoint_id: str) -> Response:
        services.webhook_endpoint_delete(
            actor=request_actor(request), user=authenticated_user(request), endpoint_id=endpoint_id
        )
        return Response(status=204)


class WebhookEndpointRotateSecretApi(APIView):
    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        request=NoBody,
        responses={200: WebhookEndpointWithSecretSerializer, **error_responses(400, 401, 404)},
    )
    def post(self, request: Request, endpoint_id: str) -> Response:
        _no_body(request)
        result = services.webhook_endpoint_rotate_secret(
            actor=request_actor(request), user=authenticated_user(request), endpoint_id=endpoint_id
        )
        return Response(_with_secret(result))


class WebhookDeliveriesApi(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_list",
        parameters=[
            OpenApiParameter(
                "status", blank_or({"type": "string", "enum": WebhookDelivery.Status.values}), required=False
            ),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: page_schema("WebhookDeliveryList", WebhookDeliveryOutputSerializer),
            **error_responses(400, 401, 404),
        },
    )
    def get(self, request: Request, endpoint_id: str) -> Response:
        params = page_params(request.query_params)
        queryset = selectors.webhook_delivery_list(
            user=authenticated_user(request),
            endpoint_id=endpoint_id,
            status=request.query_params.get("status"),
        )
        return Response(page_body(paginate(queryset, params), WebhookDeliveryOutputSerializer))


class WebhookDeliveryDetailApi(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_retrieve",
        responses={200: WebhookDeliveryOutputSerializer, **error_responses(401, 404)},
    )
    def get(self, request: Request, delivery_id: str) -> Response:
        delivery = selectors.webhook_delivery_get(user=authenticated_user(request), delivery_id=delivery_id)
        return Response(WebhookDeliveryOutputSerializer.represent(delivery))


class WebhookDeliveryRetryApi(APIView):
    @extend_schema(
        operation_id="webhook_deliveries_retry",
        request=NoBody,
        responses={202: WebhookDeliveryOutputSerializer, **error_responses(400, 401, 404, 409)},
    )
    def post(self, request: Request, delivery_id: str) -> Response:
        _no_body(request)
        delivery = services.webhook_delivery_retry(
            actor=request_actor(request), user=authenticated_user(request), delivery_id=delivery_id
        )
        return Response(WebhookDeliveryOutputSerializer.represent(delivery), status=202)
