"""The audit hash chain: what each row's `hash` covers, computed the same way when written and verified.

    hash = sha256(canonical JSON of the row's content fields, including prev_hash)

Canonical JSON is sorted keys, `(",", ":")` separators and ASCII escapes, over values normalised
to what the database gives back, so a row read later hashes exactly as it did when written:
datetimes in UTC with microseconds, IP addresses in their compressed form, and whole floats as
integers as written in decimal (PostgreSQL's jsonb returns `1e+20` as `100000000000000000000`). The row id is not
covered (it is only known after the INSERT, and the triggers refuse the UPDATE that would follow);
order is carried by `prev_hash` instead.

The trail is `CHAINS` independent chains (a row's `chain`); the first row of chain k has
`genesis_hash(k)` as its `prev_hash`. Chain 0 starts from `GENESIS_HASH` (all zeros), the others
from a hash of their number, so no two chains share a first predecessor and the unique index on
`prev_hash` forbids forks in every chain at once. A row moved to another chain breaks both: its
old successor no longer follows anything in its chain, and it follows nothing in its new one.
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
# Enough that the transactions one server runs at once rarely share a chain (each holds its
# chain's lock from its audit row to its commit); verify_audit_chain accepts any number found.
CHAINS = 16
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


def genesis_hash(chain: int) -> str:
    """The `prev_hash` of the first row of `chain`."""
    if chain == 0:
        return GENESIS_HASH
    return hashlib.sha256(f"paydesk audit chain {chain}".encode("ascii")).hexdigest()


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
