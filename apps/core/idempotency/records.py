"""What both modes share: the stored record's rules (what is kept, for how long), scoping and
fingerprints, replays and their errors, the Redis fast path, and purging expired keys."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apps.core.errors import IdempotencyError
from apps.core.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"


REPLAYED_HEADER = "Idempotent-Replayed"


DEFAULT_TTL_HOURS = 24


DEFAULT_WAIT_SECONDS = 5.0


_SCOPE_LENGTH: int = IdempotencyRecord._meta.get_field("scope").max_length or 0


_FIRST_POLL_SECONDS = 0.02


_MAX_POLL_SECONDS = 0.25


_PURGE_BATCH = 5000


# Rejections that happen before a view does any work. They are not kept, so the client may fix the
# request and send it again with the same key.
_UNSTORED_STATUSES = frozenset({401, 403, 404, 405, 413, 415, 429})


_UNSTORED_400_CODES = frozenset(
    {
        "parameter_invalid",
        "parameter_missing",
        "invalid_json",
        "bad_request",
        "raw_card_data_rejected",
        "nul_character_rejected",
    }
)


View = Callable[..., Any]


def is_stored(status: int, body: Any) -> bool:
    """Whether a response is kept for replay: everything but a rejection before any work."""
    if status in _UNSTORED_STATUSES:
        return False
    if status == 400:
        return _error_code(body) not in _UNSTORED_400_CODES
    return True


def _error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def request_key_sql(*, correlation_id: str, principal: str, before: str) -> str:
    """An SQL expression (over the given SQL expressions) for the Idempotency-Key of the latest keyed
    request with that correlation id made by that principal no later than `before`, or '' when
    there is none: how an event finds the key of the request that caused it (apps.events) in the
    statement that writes it. A client may reuse a correlation id, hence the principal and time."""
    table = IdempotencyRecord._meta.db_table
    # (expressions of the caller's own SQL, never values: those travel as parameters)
    return (
        f"COALESCE((SELECT r.key FROM {table} r WHERE r.correlation_id <> '' "  # noqa: S608  # nosec B608: table and column names of our models, values as parameters
        f"AND r.correlation_id = {correlation_id} AND left(r.scope, length({principal}) + 1) = {principal} || ' ' "
        f"AND r.created_at <= {before} ORDER BY r.created_at DESC LIMIT 1), '')"
    )


def build_scope(*, principal: str, method: str, path: str) -> str:
    """`<principal> <METHOD> <path>`; an overlong path keeps a prefix and a digest of the whole."""
    scope = f"{principal} {method.upper()} {path}"
    if len(scope) <= _SCOPE_LENGTH:
        return scope
    digest = hashlib.sha256(scope.encode()).hexdigest()
    return f"{scope[: _SCOPE_LENGTH - len(digest) - 1]}#{digest}"


def request_fingerprint(data: Any) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, ASCII) of the parsed body."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _body_of(response: Any) -> Any:
    """The body as the client receives it, as JSON data (what a replay must send back)."""
    rendered = _rendered_body(response)
    return None if rendered is None else json.loads(rendered)


def _rendered_body(response: Any) -> str | None:
    """The body as the client receives it, as JSON text (None: no JSON body)."""
    if isinstance(response, Response):
        return None if response.data is None else JSONRenderer().render(response.data).decode()
    content = getattr(response, "content", b"")
    try:
        return json.dumps(json.loads(content)) if content else None
    except ValueError:
        return None


def _replay(status: int, body: Any) -> Response:
    return Response(body, status=status, headers={REPLAYED_HEADER: "true"})


def _key_in_use() -> IdempotencyError:
    return IdempotencyError(
        f"A request with this {HEADER} is still being processed; retry later.",
        code="idempotency_key_in_use",
    )


def _key_reused() -> IdempotencyError:
    return IdempotencyError(
        f"This {HEADER} was already used with a different request body.",
        code="idempotency_key_reused",
        status_code=422,
    )


def _ttl() -> timedelta:
    return timedelta(hours=getattr(settings, "IDEMPOTENCY_TTL_HOURS", DEFAULT_TTL_HOURS))


def _wait_seconds() -> float:
    return float(getattr(settings, "IDEMPOTENCY_WAIT_SECONDS", DEFAULT_WAIT_SECONDS))


def _cache_key(scope: str, key: str) -> str:
    return "idempotency:" + hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()


def _cache_get(cache_key: str) -> dict[str, Any] | None:
    try:
        return cache.get(cache_key)
    except Exception as exc:
        logger.warning("idempotency cache unavailable (%s); answering from PostgreSQL", type(exc).__name__)
        return None


def _cache_completed(record: IdempotencyRecord, *, status: int | None, body: Any) -> None:
    # Cached no longer than the row lives, so an expired key is never replayed from Redis.
    expires_at: datetime = record.created_at + _ttl()
    timeout = int((expires_at - timezone.now()).total_seconds())
    if timeout <= 0:
        return
    value = {"fingerprint": record.fingerprint, "status": status, "body": body}
    try:
        cache.set(_cache_key(record.scope, record.key), value, timeout=timeout)
    except Exception as exc:
        logger.warning(
            "idempotency cache unavailable (%s); response kept in PostgreSQL only", type(exc).__name__
        )


def purge_expired_records(*, now: datetime | None = None) -> int:
    """Deletes records older than IDEMPOTENCY_TTL_HOURS, in batches; returns how many."""
    cutoff = (now or timezone.now()) - _ttl()
    purged = 0
    while True:
        batch = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                :_PURGE_BATCH
            ]
        )
        if not batch:
            return purged
        purged += IdempotencyRecord.objects.filter(pk__in=batch).delete()[0]
