"""OpenAPI plumbing: component names for nested serializers, text constraints DRF enforces without
saying so, and the error envelope's schema."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from apps.core.fields import CURRENCY_DESCRIPTION, CurrencyField
from apps.core.serializers import InputSerializer


class PaydeskAutoSchema(AutoSchema):
    """Names `PaymentCaptureApi.InputSerializer` "PaymentCaptureInput": every view nests its own
    `InputSerializer`/`OutputSerializer` (CONVENTIONS.md), which would otherwise all collide.

    It also documents the error envelope under every status any operation can answer with
    (invalid input, authentication, permissions, not found, conflicts, idempotency, size, media
    type, throttling), so a client's generated code knows every error's shape.

    A request body of an `InputSerializer` has `additionalProperties: false`: a field it does not
    declare is refused (400 `parameter_unknown`).

    A currency is an `enum` of the supported codes (upper-case, the way they are returned); every
    currency field's description says that any case is accepted.

    And it writes down what a DRF text field refuses on its own: a NUL character always, and a
    value that is blank once trimmed unless blanks are allowed. Without it a request the schema
    calls valid (`"note": " "`) would be a 400. An input serializer with `requires_any_field = True`
    (an update that must change something) is documented as needing a body with one of its fields.
    """

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        is_plain_text = isinstance(schema, dict) and schema.get("type") == "string" and "format" not in schema
        if direction == "request" and isinstance(field, serializers.CharField) and is_plain_text:
            schema.setdefault("pattern", text_pattern(field))
        return schema

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        for name, field in serializer.fields.items():
            # A field's own help text replaces the currency's description: keep "any case" said.
            prop = schema.get("properties", {}).get(name)
            if isinstance(field, CurrencyField) and isinstance(prop, dict) and field.help_text:
                prop["description"] = f"{field.help_text} {CURRENCY_DESCRIPTION}"
        if direction == "request" and isinstance(serializer, InputSerializer):
            schema["additionalProperties"] = False  # an unknown field is a 400 `parameter_unknown`
        if direction == "request" and getattr(serializer, "requires_any_field", False):
            schema["anyOf"] = [{"required": [name]} for name in schema.get("properties", {})]
        return schema

    def _get_request_for_media_type(self, serializer, direction="request"):
        schema, required = super()._get_request_for_media_type(serializer, direction)
        return schema, required or getattr(serializer, "requires_any_field", False)

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


def blank_or(schema: dict) -> dict:
    """A list filter's schema: a blank value (`?status=`) is the same as leaving the filter out."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def text_pattern(field: serializers.CharField) -> str:
    """The characters a DRF `CharField` accepts, as a JSON Schema pattern (`\\s` is what `strip()` trims)."""
    if field.allow_blank or not field.trim_whitespace:
        return r"^[^\x00]*$"
    return r"^[^\x00]*[^\s\x00][^\x00]*$"


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
