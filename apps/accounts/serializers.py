from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from apps.accounts.models import Roles, User


class UserSerializer(serializers.ModelSerializer):
    """API.md's user: `{id, email, full_name, roles}`."""

    roles = serializers.ListField(child=serializers.ChoiceField(choices=Roles.ALL), read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "roles"]
        read_only_fields = fields


# API.md's error envelope, for the schema. (Belongs in apps.core once another app needs it.)
ErrorEnvelope = inline_serializer(
    "ErrorEnvelope",
    {
        "error": inline_serializer(
            "Error",
            {
                "type": serializers.ChoiceField(
                    choices=[
                        "invalid_request_error",
                        "authentication_error",
                        "permission_error",
                        "conflict_error",
                        "idempotency_error",
                        "rate_limit_error",
                        "api_error",
                    ]
                ),
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
    409: "Conflicts with existing state.",
    429: "Rate limited; see the Retry-After header.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        status: OpenApiResponse(response=ErrorEnvelope, description=_ERROR_DESCRIPTIONS[status])
        for status in statuses
    }
