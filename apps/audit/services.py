from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from apps.audit.chain import CHAINS, chain_hash, genesis_hash
from apps.audit.models import ActorType, AuditLog
from apps.core.actors import Actor
from apps.core.correlation import get_correlation_id, get_request_meta
from apps.core.scrubbing import scrub

# Base key of the PostgreSQL advisory locks that serialise appends, one per chain: chain k is
# locked with key CHAIN_LOCK_KEY + k (a constant no other code uses; this one is "audit" in ASCII).
CHAIN_LOCK_KEY = 0x6175646974
# Picks the transaction's chain from its own id (every row of one transaction lands in one chain,
# so a transaction never holds two chain locks and two transactions can't deadlock over them;
# consecutive transactions go round the chains), locks it and reads its newest hash, in one round
# trip (migration 0003).
_LOCK_CHAIN_SQL = "SELECT chain, tip FROM audit_chain_lock(%s, %s)"


def audit_record(
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    """Appends one record to the audit chain, inside the caller's transaction.

    It commits or rolls back with the change it describes, so it refuses to run outside a
    transaction. `actor` is a User, an API key (a model named "apikey") or None for the system
    (an AnonymousUser is recorded as the system, named "anonymous").
    `before`/`after` are made JSON (dates, decimals and other objects become strings) and scrubbed of
    secrets and card numbers; the correlation id, IP and user agent come from the request being
    served (apps.core.correlation).

    Two transactions must never chain to the same predecessor, so on PostgreSQL appending takes a
    transaction-level advisory lock on the chain right before reading its last row, held until the
    caller commits: every other writer of that chain waits for that commit. The trail is
    `apps.audit.chain.CHAINS` chains, and a transaction's id picks its chain, so concurrent
    transactions mostly append to different chains instead of queueing behind one lock (and one
    fsync) each. Call this late in the service's transaction (after the row locks and checks,
    next to `emit_event`) so the wait is short. Under READ COMMITTED (PostgreSQL's default, which
    Paydesk uses) the read after the lock sees the previous holder's row.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    context = audit_context(actor=actor)
    row = AuditLog(
        actor_type=context.actor_type,
        actor_id=context.actor_id,
        actor_repr=context.actor_repr,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        before=_scrubbed_json(before),
        after=_scrubbed_json(after),
        correlation_id=context.correlation_id,
        ip=context.ip,
        user_agent=context.user_agent,
    )
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_CHAIN_SQL, [CHAINS, CHAIN_LOCK_KEY])
        row.chain, last = cursor.fetchone()
    row.prev_hash = last or genesis_hash(row.chain)
    # Stamped under the lock, so created_at never goes backwards along the chain.
    row.created_at = timezone.now()
    row.hash = chain_hash(row)
    row.save(force_insert=True)
    return row


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who acts and the request they act through, as an audit row records them.

    Money movements that run as one PostgreSQL function pass these as its arguments, with
    `apps.audit.chain.CHAINS` and `CHAIN_LOCK_KEY`, and the function's `audit_append` (migration 0004) writes
    and hashes the row exactly as `audit_record` does.
    """

    actor_type: str
    actor_id: str
    actor_repr: str
    correlation_id: str
    ip: str | None
    user_agent: str


def audit_context(*, actor: Actor) -> AuditContext:
    actor_type, actor_id, actor_repr = _describe_actor(actor)
    meta = get_request_meta()
    return AuditContext(
        actor_type=actor_type,
        actor_id=actor_id,
        actor_repr=actor_repr[: AuditLog._meta.get_field("actor_repr").max_length],
        correlation_id=get_correlation_id() or "",
        ip=_valid_ip(meta.get("ip")),
        user_agent=(meta.get("user_agent") or "")[: AuditLog._meta.get_field("user_agent").max_length],
    )


def _describe_actor(actor: Actor) -> tuple[str, str, str]:
    if actor is None:
        return ActorType.SYSTEM, "", "system"
    if getattr(actor, "is_anonymous", False):
        # A request nobody is authenticated for (a failed login): no one to name but the request.
        return ActorType.SYSTEM, "", "anonymous"
    # A User or an ApiKey: their models live in apps.accounts, above audit, so they are told apart
    # by their model's name and read by attribute.
    principal: Any = actor
    if principal._meta.model_name == "apikey":
        return ActorType.API_KEY, str(principal.pk), str(principal.name)
    return ActorType.USER, str(principal.pk), str(principal.email)


class _AuditJSONEncoder(DjangoJSONEncoder):
    """Dates, decimals and UUIDs as Django encodes them; anything else by its str().

    A value the encoder can't handle (a Money, an enum) must not fail the change being recorded.
    """

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def _scrubbed_json(value: dict[str, Any] | None) -> Any:
    if value is None:
        return None
    # What is hashed must be exactly what the JSON column gives back later.
    return scrub(json.loads(json.dumps(value, cls=_AuditJSONEncoder)))


def _valid_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None
