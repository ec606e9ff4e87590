"""OpenAPI plumbing: component names for nested serializers, and the error envelope's schema."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class PaydeskAutoSchema(AutoSchema):
    """Names `PaymentCaptureApi.InputSerializer` "PaymentCaptureInput": every view nests its own
    `InputSerializer`/`OutputSerializer` (CONVENTIONS.md), which would otherwise all collide."""

    def get_serializer_name(self, serializer, direction):
        name = super().get_serializer_name(serializer, direction)
        parts = type(serializer).__qualname__.split(".")
        if len(parts) >= 2 and name == parts[-1]:
            return parts[-2].removesuffix("Api") + name
        return name


ERROR_TYPES = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "conflict_error",
    "idempotency_error",
    "rate_limit_error",
    "api_error",
]

ErrorEnvelope = inline_serializer(
    "ErrorEnvelope",
    {
        "error": inline_serializer(
            "Error",
            {
                "type": serializers.ChoiceField(choices=ERROR_TYPES),
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "param": serializers.CharField(allow_null=True),
                "details": serializers.JSONField(required=False),
            },
        )
    },
)

_ERROR_DESCRIPTIONS = {
    400: "Invalid request: `param` names the field.",
    401: "Missing, invalid or revoked credentials.",
    403: "Not allowed.",
    404: "No such object (or not yours).",
    409: "Conflicts with the object's current state, or an Idempotency-Key still in use.",
    422: "Idempotency-Key reused with a different body.",
    429: "Rate limited; see the Retry-After header.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """`responses={201: X, **error_responses(400, 404)}` in `extend_schema`."""
    return {
        status: OpenApiResponse(response=ErrorEnvelope, description=_ERROR_DESCRIPTIONS[status])
        for status in statuses
    }
