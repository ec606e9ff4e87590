"""One place that turns every error under /api/ into API.md's envelope.

DRF calls `api_exception_handler` for exceptions raised in API views; `ApiErrorMiddleware` covers
what never reaches a DRF view (unknown paths, oversized bodies, crashes in middleware) through
`envelope_for_status`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from apps.core.errors import ApplicationError, RateLimited, error_envelope
from apps.core.serializers import UNKNOWN_PARAMETER

logger = logging.getLogger(__name__)

# What each status means when nothing more specific is known.
STATUS_DEFAULTS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request_error", "bad_request", "The request could not be understood."),
    401: (
        "authentication_error",
        "authentication_failed",
        "Authentication credentials were missing or invalid.",
    ),
    403: ("permission_error", "permission_denied", "You do not have permission to perform this action."),
    404: ("invalid_request_error", "resource_missing", "No such resource."),
    405: ("invalid_request_error", "method_not_allowed", "Method not allowed."),
    406: ("invalid_request_error", "not_acceptable", "The requested response format is not available."),
    409: ("conflict_error", "conflict", "The request conflicts with the current state of the object."),
    413: ("invalid_request_error", "request_too_large", "The request body is too large."),
    415: ("invalid_request_error", "unsupported_media_type", "Content-Type must be application/json."),
    429: ("rate_limit_error", "rate_limited", "Too many requests."),
    500: ("api_error", "internal_error", "An internal error occurred. It has been logged."),
    503: ("api_error", "service_unavailable", "The service is temporarily unavailable."),
}

_MISSING_CODES = {"required"}


def envelope_for_status(status: int, message: str | None = None, code: str | None = None) -> dict[str, Any]:
    fallback = 400 if status < 500 else 500
    type_, default_code, default_message = STATUS_DEFAULTS.get(status, STATUS_DEFAULTS[fallback])
    return error_envelope(type=type_, code=code or default_code, message=message or default_message)


def _first_field_error(detail: Any, path: str = "") -> tuple[str | None, Any]:
    """Walks DRF's nested error detail to the first leaf: (dotted param, ErrorDetail)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a list's items, keyed by index: `transfers[3].amount`
                name = f"{path}[{key}]"
            else:
                name = path if key == "non_field_errors" else (f"{path}.{key}" if path else str(key))
            return _first_field_error(value, name)
    if isinstance(detail, list) and detail:
        for index, item in enumerate(detail):
            if not isinstance(item, (dict, list)):
                return path or None, item
            if item:  # a list of nested objects reports {} for each valid one: name the first invalid
                return _first_field_error(item, f"{path}[{index}]")
    return path or None, detail


def _child_path(path: str, key: Any) -> str:
    if key == "non_field_errors":
        return path
    if isinstance(key, int):  # a ListField's errors are keyed by the item's index
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _first_unknown_parameter(detail: Any, path: str = "") -> str | None:
    """The dotted path of the first field an input serializer did not declare, at any depth."""
    if isinstance(detail, dict):
        items: list[tuple[str, Any]] = [(_child_path(path, key), value) for key, value in detail.items()]
    elif isinstance(detail, list):
        items = [
            (f"{path}[{index}]" if isinstance(value, (dict, list)) else path, value)
            for index, value in enumerate(detail)
        ]
    else:
        return path if getattr(detail, "code", None) == UNKNOWN_PARAMETER else None
    for name, value in items:
        if (found := _first_unknown_parameter(value, name)) is not None:
            return found
    return None


def _validation_envelope(exc: drf.ValidationError) -> dict[str, Any]:
    # An unknown field is named first, wherever it is: the client's mistake is not the fields it
    # then seems to be missing.
    unknown = _first_unknown_parameter(exc.detail)
    if unknown is not None:
        return error_envelope(
            type="invalid_request_error",
            code=UNKNOWN_PARAMETER,
            message=f"Received unknown parameter: {unknown}",
            param=unknown,
        )
    param, leaf = _first_field_error(exc.detail)
    text = str(leaf)
    code = "parameter_missing" if getattr(leaf, "code", None) in _MISSING_CODES else "parameter_invalid"
    message = text if not param or text.startswith(param) else f"{param}: {text}"
    details = exc.detail if isinstance(exc.detail, dict) else None
    return error_envelope(
        type="invalid_request_error", code=code, message=message, param=param, details=details
    )


def _with_retry_after(response: Response, seconds: int | float | None) -> Response:
    if seconds:
        response["Retry-After"] = str(int(seconds + 0.999))
    return response


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        response = Response(exc.as_envelope(), status=exc.status_code)
        if isinstance(exc, RateLimited):
            _with_retry_after(response, exc.retry_after)
        return response
    if isinstance(exc, Http404):
        return Response(envelope_for_status(404), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(envelope_for_status(403), status=403)
    if isinstance(exc, RequestDataTooBig):
        return Response(envelope_for_status(413), status=413)
    if isinstance(exc, drf.ValidationError):
        return Response(_validation_envelope(exc), status=400)
    if isinstance(exc, drf.ParseError):
        return Response(envelope_for_status(400, str(exc.detail), code="invalid_json"), status=400)
    if isinstance(exc, drf.Throttled):
        return _with_retry_after(
            Response(envelope_for_status(429, "Too many requests; retry later."), status=429),
            exc.wait,  # type: ignore[attr-defined]  # set by Throttled.__init__, not in the stubs
        )
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        response = Response(envelope_for_status(401, str(exc.detail)), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response
    if isinstance(exc, drf.APIException):
        return Response(envelope_for_status(exc.status_code, str(exc.detail)), status=exc.status_code)
    return None  # a real crash: ApiErrorMiddleware logs it and answers 500 in the envelope
