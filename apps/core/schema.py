"""OpenAPI plumbing: component names for nested serializers, and the error envelope's schema."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class PaydeskAutoSchema(AutoSchema):
    """Names `PaymentCaptureApi.InputSerializer` "PaymentCaptureInput": every view nests its own
    `InputSerializer`/`OutputSerializer` (CONVENTIONS.md), which would otherwise all collide.

    It also documents the error envelope under every status any operation can answer with
    (invalid input, authentication, permissions, not found, conflicts, idempotency, size, media
    type, throttling), so a client's generated code knows every error's shape.
    """

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status, response in error_responses(*COMMON_ERROR_STATUSES).items():
            responses.setdefault(
                str(status), self._get_response_for_code(response, str(status), direction=direction)
            )
        return responses

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

COMMON_ERROR_STATUSES = (400, 401, 403, 404, 405, 409, 413, 415, 422, 429)

_ERROR_DESCRIPTIONS = {
    400: "Invalid request: `param` names the field.",
    401: "Missing, invalid or revoked credentials.",
    403: "Not allowed.",
    404: "No such object (or not yours).",
    405: "Method not allowed on this path.",
    413: "Request body too large.",
    415: "Content-Type must be application/json.",
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
