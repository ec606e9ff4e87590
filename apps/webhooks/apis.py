"""POST /api/v1/webhooks/stripe and /api/v1/webhooks/authorize-net: verify, store once, answer.

No authentication class (the signature is the authentication), no CSRF (no session), no parser:
the raw body is read as bytes and verified before anything parses it.
"""

from __future__ import annotations

from typing import NamedTuple

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.schema import ErrorEnvelope, error_responses
from apps.core.serializers import ConstantField, OutputSerializer
from apps.webhooks import services
from apps.webhooks.errors import WebhookBodyTooLarge
from apps.webhooks.models import WebhookEvent
from apps.webhooks.providers import authorize_net_events, stripe_events


class WebhookReceipt(NamedTuple):
    """What `services.webhook_event_receive` returns: the stored event and whether this stored it."""

    event: WebhookEvent
    created: bool

    @property
    def duplicate(self) -> bool:
        return not self.created


class WebhookReceiptSerializer(OutputSerializer):
    id = serializers.CharField(source="event.pk", help_text="Paydesk's id for the stored event.")
    object = ConstantField("webhook_event")
    provider = serializers.ChoiceField(source="event.provider", choices=WebhookEvent.Provider.choices)
    provider_event_id = serializers.CharField(source="event.provider_event_id")
    type = serializers.CharField(source="event.type")
    status = serializers.ChoiceField(source="event.status", choices=WebhookEvent.Status.choices)
    duplicate = serializers.BooleanField(
        help_text="True when this event was already stored: nothing was done."
    )


def _documented(
    *, operation_id: str, summary: str, header: str, header_format: str, header_pattern: str, description: str
):
    """The OpenAPI description of one provider's endpoint (the view itself is shared)."""
    operation = extend_schema(
        operation_id=operation_id,
        summary=summary,
        description=description,
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                header,
                {"type": "string", "pattern": header_pattern},
                OpenApiParameter.HEADER,
                required=True,
                description=header_format,
            )
        ],
        responses={
            200: WebhookReceiptSerializer,
            **error_responses(400),
            413: OpenApiResponse(
                response=ErrorEnvelope, description="The body is over MAX_WEBHOOK_BODY_BYTES."
            ),
            503: OpenApiResponse(response=ErrorEnvelope, description="No signing secret is configured."),
        },
    )
    return extend_schema_view(post=operation)


class _WebhookApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    provider: str

    def post(self, request):
        # Refused before the body is read when the client says how long it is.
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > settings.MAX_WEBHOOK_BODY_BYTES:
            raise WebhookBodyTooLarge(f"The body is over {settings.MAX_WEBHOOK_BODY_BYTES} bytes.")
        received = services.webhook_event_receive(
            provider=self.provider, body=request.body, headers=request.headers
        )
        return Response(WebhookReceiptSerializer.represent(WebhookReceipt(*received)), status=200)


@_documented(
    operation_id="webhooks_stripe",
    summary="Receive a Stripe event",
    header=stripe_events.SIGNATURE_HEADER,
    header_format="t=<unix time>,v1=<hex HMAC-SHA256>[,v1=...]",
    header_pattern="^t=[0-9]+(,v[0-9]+=[0-9a-f]+)+$",
    description=(
        "Verified against STRIPE_WEBHOOK_SECRET(S) with Stripe's scheme (HMAC-SHA256 of `t.body`, "
        "300 s tolerance, any `v1` signature). Stored once per event id; processed by a worker."
    ),
)
class StripeWebhookApi(_WebhookApi):
    provider = WebhookEvent.Provider.STRIPE


@_documented(
    operation_id="webhooks_authorize_net",
    summary="Receive an Authorize.Net event",
    header=authorize_net_events.SIGNATURE_HEADER,
    header_format="sha512=<128 hex digits>",
    header_pattern="^[Ss][Hh][Aa]512=[0-9A-Fa-f]{128}$",
    description=(
        "Verified against AUTHORIZENET_SIGNATURE_KEY: HMAC-SHA512 of the raw body, hex, any case. "
        "Stored once per notificationId; processed by a worker."
    ),
)
class AuthorizeNetWebhookApi(_WebhookApi):
    provider = WebhookEvent.Provider.AUTHORIZE_NET
