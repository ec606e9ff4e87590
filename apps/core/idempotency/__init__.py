"""`Idempotency-Key` for DRF views: one execution per (principal, method, path, key), however often
the client retries.

    class TransferCreateApi(APIView):
        @idempotent
        def post(self, request): ...

A request that carries a key goes through these steps:
1. The key is checked (1-255 printable ASCII characters) and the body fingerprinted (sha256 of its
   canonical JSON). A body DRF cannot parse fails here with its usual 400, before anything is kept.
2. Fast path: a completed response cached in Redis under (scope, key) is replayed with no query
   (not in the one-transaction mode below, whose claim finds a replay in the same statement that
   claims a new key: a Redis lookup and store would cost every new request two round trips).
3. Claim: a `started` IdempotencyRecord is inserted and committed in its own short transaction
   before the view runs. Its unique (scope, key) is what makes the view run once: a concurrent
   request gets an IntegrityError and reads the row instead. It replays a completed response,
   refuses a different body (422), or polls a started one for IDEMPOTENCY_WAIT_SECONDS before
   answering 409. No decision depends on Redis, so losing Redis costs speed, never a double charge.
4. The view runs, watched for database writes that commit (`_CommitWatch`). A success is stored on
   the row and cached. An error (4xx or 5xx, a domain refusal or a crash) is stored only if some
   write of the request committed: then it describes work that happened, and replaying it is what
   keeps a retry from running that work twice. An error whose work rolled back changed nothing,
   so the row is deleted and a retry with the same key runs again; so is a rejection before any
   work (`is_stored`), so the client may correct the request and retry with the same key.

A `started` row left by a process that died is never run again automatically: that process may
have committed money before it died, and nothing here can tell. It answers 409 until it expires
(IDEMPOTENCY_TTL_HOURS after it was created); then the key is free again, and
`purge_expired_records` (the Celery task `apps.core.tasks.purge_idempotency_records`) deletes it.

`@idempotent(atomic=True)`: one transaction for a pure-database request (no gateway call), e.g.
a transfer. Steps 3 and 4 become one durable transaction that the decorator opens: BEGIN, the claim
(`INSERT ... ON CONFLICT DO NOTHING`), the view, the response stored on the row, COMMIT. The claim is
never visible uncommitted: a racing request with the same key blocks on the unique index inside
its own INSERT until the first commits (it then reads the completed row and replays) or rolls back
(it then claims and runs). The wait is bounded by IDEMPOTENCY_WAIT_SECONDS (`lock_timeout` for
that INSERT only), then 409 `idempotency_key_in_use`. An error answer (raised or returned, 4xx or
5xx) rolls the whole transaction back, claim included: nothing was written, so nothing is stored
and a retry with the key runs again, as step 4 decides for an error whose work rolled back. A
deadlock or serialization failure reruns the whole transaction, claim included. A failure to
store the response rolls the work back with it (500, key free): no work is ever left unanswered.
The services the view calls stay `@durable_atomic` (a durable `transaction.atomic`): called by
such a view, directly inside the transaction the decorator opened, they join it; called anywhere
else (another transaction open, a task, a command, a test), they are durable as before.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import InvalidRequest
from apps.core.idempotency.committed import _claim, _run
from apps.core.idempotency.one_transaction import (
    _run_in_one_transaction,
    durable_atomic,
    in_request_transaction,
)
from apps.core.idempotency.records import (
    DEFAULT_TTL_HOURS,
    DEFAULT_WAIT_SECONDS,
    HEADER,
    REPLAYED_HEADER,
    View,
    _cache_get,
    _cache_key,
    _key_reused,
    _replay,
    build_scope,
    is_stored,
    purge_expired_records,
    request_fingerprint,
    request_key_sql,
)

__all__ = [
    "DEFAULT_TTL_HOURS",
    "DEFAULT_WAIT_SECONDS",
    "HEADER",
    "REPLAYED_HEADER",
    "build_scope",
    "durable_atomic",
    "idempotent",
    "idempotent_required",
    "in_request_transaction",
    "is_stored",
    "purge_expired_records",
    "request_fingerprint",
    "request_key_sql",
]

_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def idempotent(view_method: View | None = None, *, atomic: bool = False) -> View:
    """Makes a DRF APIView handler honour `Idempotency-Key` as API.md describes (see the module).

    `@idempotent` or `@idempotent(atomic=True)`: the latter only for a view that does nothing but
    database work, all of it through `@durable_atomic` services (no gateway or other outside call:
    its claim, work and response share one transaction that a racer waits on).
    """
    if view_method is None:
        return lambda method: _idempotent(method, required=False, atomic=atomic)
    return _idempotent(view_method, required=False, atomic=atomic)


def idempotent_required(view_method: View | None = None, *, atomic: bool = False) -> View:
    """Like `idempotent`, for a call API.md makes require the key: without one, 400 `parameter_missing`."""
    if view_method is None:
        return lambda method: _idempotent(method, required=True, atomic=atomic)
    return _idempotent(view_method, required=True, atomic=atomic)


def _idempotent(view_method: View, *, required: bool, atomic: bool) -> View:
    @functools.wraps(view_method)
    def handler(view: Any, request: Request, *args: Any, **kwargs: Any) -> Any:
        key = _read_key(request)
        if key is None and required:
            raise InvalidRequest(
                f"This call needs an {HEADER} header, so that a retry can never move the money twice.",
                code="parameter_missing",
                param=HEADER,
            )
        if key is None:
            return view_method(view, request, *args, **kwargs)
        scope = build_scope(principal=_principal(request), method=request.method or "", path=request.path)
        fingerprint = request_fingerprint(request.data)
        if atomic:  # its claim finds a replay itself, in the statement that claims a new key
            return _run_in_one_transaction(
                view, view_method, request, args, kwargs, scope=scope, key=key, fingerprint=fingerprint
            )
        cached = _cache_get(_cache_key(scope, key))
        if cached is not None:
            if cached["fingerprint"] != fingerprint:
                raise _key_reused()
            return _replay(cached["status"], cached["body"])
        claimed = _claim(scope=scope, key=key, fingerprint=fingerprint)
        if isinstance(claimed, Response):
            return claimed
        return _run(view, view_method, claimed, request, args, kwargs)

    return extend_schema(
        parameters=[
            OpenApiParameter(
                HEADER,
                {"type": "string", "pattern": f"^{_VALID_KEY.pattern}$"},
                location=OpenApiParameter.HEADER,
                required=required,
                description=(
                    "Up to 255 printable ASCII characters. A retry with the same key and body replays "
                    "the first response (header `Idempotent-Replayed: true`); keys live at least 24 h."
                ),
            )
        ]
    )(handler)


def _read_key(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _VALID_KEY.fullmatch(key):
        raise InvalidRequest(
            f"{HEADER} must be 1 to 255 printable ASCII characters.",
            code="idempotency_key_invalid",
            param=HEADER,
        )
    return key


def _principal(request: Request) -> str:
    user = request.user
    if not getattr(user, "is_authenticated", False):
        # Anonymous callers share no identity, so one could replay another's response.
        raise RuntimeError("@idempotent views must require an authenticated principal")
    return str(user.pk)
