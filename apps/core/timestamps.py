"""How instants appear in API bodies, event payloads and audit rows: ISO 8601 in UTC with a "Z"."""

from __future__ import annotations

from datetime import datetime


def iso_z(value: datetime | None) -> str | None:
    """`2026-12-03T12:45:09.123456Z` for an aware UTC datetime; None stays None."""
    return value.isoformat().replace("+00:00", "Z") if value else None
