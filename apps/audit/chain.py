"""The audit hash chain: what each row's `hash` covers, computed the same way when written and verified.

    hash = sha256(canonical JSON of the row's content fields, including prev_hash)

Canonical JSON is sorted keys, `(",", ":")` separators and ASCII escapes, over values normalised
to what the database gives back, so a row read later hashes exactly as it did when written:
datetimes in UTC with microseconds, IP addresses in their compressed form, and whole floats as
integers as written in decimal (PostgreSQL's jsonb returns `1e+20` as `100000000000000000000`). The row id is not
covered (it is only known after the INSERT, and the triggers refuse the UPDATE that would follow);
order is carried by `prev_hash` instead. The first row's `prev_hash` is `GENESIS_HASH`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from datetime import UTC
from decimal import Decimal
from typing import Any

from apps.audit.models import AuditLog

GENESIS_HASH = "0" * 64
CHAINED_FIELDS = (
    "created_at",
    "actor_type",
    "actor_id",
    "actor_repr",
    "action",
    "entity_type",
    "entity_id",
    "before",
    "after",
    "correlation_id",
    "ip",
    "user_agent",
    "prev_hash",
)


def chain_hash(row: AuditLog) -> str:
    content = {name: getattr(row, name) for name in CHAINED_FIELDS}
    content["created_at"] = row.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    content["ip"] = str(ipaddress.ip_address(str(row.ip))) if row.ip else None
    content["before"] = _canonical_numbers(row.before)
    content["after"] = _canonical_numbers(row.after)
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def _canonical_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _canonical_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(Decimal(repr(value)))
    return value
