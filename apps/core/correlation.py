"""Correlation ids: one id per request (or task) carried into logs, audit rows, events and tasks."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

HEADER = "X-Correlation-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)
# Who is asking, as far as the audit trail cares: client IP and user agent of the current request.
_request_meta: ContextVar[dict[str, str | None]] = ContextVar("request_meta", default={})  # noqa: B039


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def accept_or_generate(value: str | None) -> str:
    """A client's id is echoed when it is a sane token; anything else is replaced, never trusted."""
    if value and _VALID.match(value):
        return value
    return new_correlation_id()


def get_correlation_id() -> str | None:
    return _current.get()


def set_correlation_id(value: str | None):
    return _current.set(value)


def reset_correlation_id(token) -> None:
    _current.reset(token)


def get_request_meta() -> dict[str, str | None]:
    """`{"ip": ..., "user_agent": ...}` of the request being served; empty in tasks and commands."""
    return _request_meta.get()


def set_request_meta(*, ip: str | None, user_agent: str | None):
    return _request_meta.set({"ip": ip, "user_agent": (user_agent or "")[:512] or None})


def reset_request_meta(token) -> None:
    _request_meta.reset(token)


class CorrelationIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs a request's 4xx/5xx after the middleware has returned, with the request attached.
        request = getattr(record, "request", None)
        record.correlation_id = _current.get() or getattr(request, "correlation_id", None)
        return True
