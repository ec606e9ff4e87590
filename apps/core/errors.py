"""Errors are data: services raise these, one handler renders them in API.md's envelope.

    {"error": {"type": ..., "code": ..., "message": ..., "param": ..., "details": ...}}

Services never import DRF; the exception handler in `apps.core.exception_handler` maps these and
Django's/DRF's own exceptions onto the envelope.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status_code = 400
    type = "invalid_request_error"
    code = "invalid_request"
    default_message = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        details: Any = None,
        status_code: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.param = param
        self.details = details
        super().__init__(self.message)

    def as_envelope(self) -> dict[str, Any]:
        return error_envelope(
            type=self.type, code=self.code, message=self.message, param=self.param, details=self.details
        )


class InvalidRequest(ApplicationError):
    code = "parameter_invalid"


class NulCharacterRejected(InvalidRequest):
    """U+0000 anywhere in a request's text (body, query, path): no PostgreSQL text or JSONB holds it,
    and no field of the API has a use for it."""

    code = "nul_character_rejected"
    default_message = "The request contains the NUL character (U+0000), which no text may hold."


class NotFound(ApplicationError):
    status_code = 404
    code = "resource_missing"
    default_message = "No such object."


class AuthenticationFailed(ApplicationError):
    status_code = 401
    type = "authentication_error"
    code = "authentication_failed"
    default_message = "Authentication credentials were missing or invalid."


class PermissionDenied(ApplicationError):
    status_code = 403
    type = "permission_error"
    code = "permission_denied"
    default_message = "You do not have permission to perform this action."


class Conflict(ApplicationError):
    status_code = 409
    type = "conflict_error"
    code = "conflict"
    default_message = "The request conflicts with the current state of the object."


class IdempotencyError(ApplicationError):
    status_code = 409
    type = "idempotency_error"
    code = "idempotency_key_in_use"
    default_message = "A request with this Idempotency-Key is still being processed."


class RateLimited(ApplicationError):
    status_code = 429
    type = "rate_limit_error"
    code = "rate_limited"
    default_message = "Too many requests."

    def __init__(self, message: str | None = None, *, retry_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServiceUnavailable(ApplicationError):
    status_code = 503
    type = "api_error"
    code = "service_unavailable"
    default_message = "The service is temporarily unavailable."


def error_envelope(
    *, type: str, code: str, message: str, param: str | None = None, details: Any = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type, "code": code, "message": message, "param": param}
    if details is not None:
        error["details"] = details
    return {"error": error}
