"""How instants appear in API bodies, event payloads and audit rows: ISO 8601 in UTC with a "Z";
and how a query parameter naming one (`created_gte`, `created_lt`) is read."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from apps.core.errors import InvalidRequest


def iso_z(value: datetime | None) -> str | None:
    """`2026-12-03T12:45:09.123456Z` for an aware UTC datetime; None stays None."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def parse_instant(name: str, value: object) -> datetime:
    """The instant a query parameter names, in UTC; anything but an ISO 8601 timestamp with a
    timezone is a 400 naming the parameter. (PostgreSQL takes offsets up to ±15:59 only, ISO 8601
    up to ±23:59: hence the conversion to UTC here.)"""
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # a 13th month; an instant before year 1 in UTC
        pass
    raise InvalidRequest(f"{name} must be an ISO 8601 timestamp with a timezone", param=name)
