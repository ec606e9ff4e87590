"""`Idempotency-Key` for DRF views: one execution per (principal, method, path, key), however often
the client retries.

    class TransferCreateApi(APIView):
        @idempotent
        def post(self, request): ...

A request that carries a key goes through these steps:
1. The key is checked (1-255 printable ASCII characters) and the body fingerprinted (sha256 of its
   canonical JSON). A body DRF cannot parse fails here with its usual 400, before anything is kept.
2. Fast path: a completed response cached in Redis under (scope, key) is replayed with no query.
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

import contextlib
import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, OperationalError, connections, transaction
from django.db.transaction import Atomic
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.commits import unflushed_commit
from apps.core.errors import IdempotencyError, InvalidRequest
from apps.core.exception_handler import envelope_for_status
from apps.core.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
DEFAULT_TTL_HOURS = 24
DEFAULT_WAIT_SECONDS = 5.0

_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
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
P = ParamSpec("P")
R = TypeVar("R")

# The durable transaction `@idempotent(atomic=True)` opened for the request being handled.
_REQUEST_TRANSACTION: ContextVar[Atomic | None] = ContextVar("idempotent_request_transaction", default=None)
# deadlock_detected, serialization_failure: the one transaction is rolled back and reruns whole.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
_ATTEMPTS = 3
_LOCK_NOT_AVAILABLE = "55P03"
_CLAIM_SQL = (
    # The claim, bounded: `lock_timeout` is raised for this statement (it waits on a racer's
    # uncommitted row of the same key) and put back in RETURNING, which runs only once the row is in.
    'INSERT INTO "core_idempotencyrecord" ("scope", "key", "fingerprint", "state", "created_at") '
    "SELECT %s, %s, %s, %s, %s FROM ("
    "SELECT set_config('paydesk.lock_timeout', current_setting('lock_timeout'), true), "
    "set_config('lock_timeout', %s, true)) AS bound "
    'ON CONFLICT ("scope", "key") DO NOTHING '
    "RETURNING \"id\", set_config('lock_timeout', current_setting('paydesk.lock_timeout'), true)"
)


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
        cached = _cache_get(_cache_key(scope, key))
        if cached is not None:
            if cached["fingerprint"] != fingerprint:
                raise _key_reused()
            return _replay(cached["status"], cached["body"])
        if atomic:
            return _run_in_one_transaction(
                view, view_method, request, args, kwargs, scope=scope, key=key, fingerprint=fingerprint
            )
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


def _claim(*, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    """Inserts the `started` row, or answers from the row another request holds."""
    deadline = time.monotonic() + _wait_seconds()
    pause = _FIRST_POLL_SECONDS
    while True:
        try:
            # Durable: the claim must be committed, visible to every other process, before the view
            # runs; inside a caller's transaction it would not be, so that is refused.
            with transaction.atomic(durable=True):
                return IdempotencyRecord.objects.create(scope=scope, key=key, fingerprint=fingerprint)
        except IntegrityError:
            pass
        held = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if held is None:
            continue  # its holder was rejected before doing any work and let the key go
        if held.created_at <= timezone.now() - _ttl():
            IdempotencyRecord.objects.filter(pk=held.pk, created_at=held.created_at).delete()
            continue
        if held.fingerprint != fingerprint:
            raise _key_reused()
        if held.state == IdempotencyRecord.State.COMPLETED:
            _cache_completed(held, status=held.response_status, body=held.response_body)
            # A completed row always has its status (the table's check constraint).
            return _replay(cast(int, held.response_status), held.response_body)
        if time.monotonic() >= deadline:
            raise _key_in_use()
        time.sleep(pause)
        pause = min(pause * 2, _MAX_POLL_SECONDS)


def durable_atomic(func: Callable[P, R]) -> Callable[P, R]:
    """`transaction.atomic(durable=True)` for a service, which joins the one transaction that
    `@idempotent(atomic=True)` opened when it is called directly inside it (by that view).

    Anywhere else it is the durable block CONVENTIONS asks of every money service: inside any
    other transaction Django refuses it, so the service's commit is never someone else's.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if in_request_transaction():
            with transaction.atomic(savepoint=False):  # no statement; a failure dooms the whole
                return func(*args, **kwargs)
        with transaction.atomic(durable=True):
            return func(*args, **kwargs)

    return wrapper


def in_request_transaction() -> bool:
    """Whether the innermost open block is the transaction `@idempotent(atomic=True)` opened.

    Then the request's commit is the decorator's, and a lock conflict is retried there (the whole
    transaction, claim included), not by the service.
    """
    block = _REQUEST_TRANSACTION.get()
    atomic_blocks = transaction.get_connection().atomic_blocks
    return block is not None and bool(atomic_blocks) and atomic_blocks[-1] is block


class _RolledBack(Exception):
    """Leaves the request's transaction with an error answer the view returned: nothing is kept."""

    def __init__(self, response: Any) -> None:
        super().__init__()
        self.response = response


def _run_in_one_transaction(
    view: Any,
    view_method: View,
    request: Request,
    args: Any,
    kwargs: Any,
    *,
    scope: str,
    key: str,
    fingerprint: str,
) -> Any:
    """Claim, view and stored response in one durable transaction (see the module)."""
    deadline = time.monotonic() + _wait_seconds()
    pause = _FIRST_POLL_SECONDS
    attempt = 0
    while True:
        attempt += 1
        try:
            outcome = _one_transaction(
                view,
                view_method,
                request,
                args,
                kwargs,
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                wait=deadline - time.monotonic(),
            )
        except _RolledBack as rolled_back:
            return rolled_back.response
        except OperationalError as exc:
            if _sqlstate(exc) in _RETRYABLE_SQLSTATES and attempt < _ATTEMPTS:
                logger.warning("idempotent request: lock conflict (attempt %d), rerunning it", attempt)
                time.sleep(_FIRST_POLL_SECONDS * attempt)
                continue
            raise
        if isinstance(outcome, tuple):
            record, response = outcome
            _cache_completed(record, status=response.status_code, body=record.response_body)
            return response
        if isinstance(outcome, Response):
            return outcome
        if outcome == "wait":  # a committed `started` row: its holder is not in this mode
            if time.monotonic() >= deadline:
                raise _key_in_use()
            time.sleep(pause)
            pause = min(pause * 2, _MAX_POLL_SECONDS)
        # "retry": the key was let go between the claim and the read; claim it again


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


def _one_transaction(
    view: Any,
    view_method: View,
    request: Request,
    args: Any,
    kwargs: Any,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    wait: float,
) -> tuple[IdempotencyRecord, Any] | Response | str:
    block = transaction.atomic(durable=True)
    with block:
        try:
            record = _claim_in_transaction(scope=scope, key=key, fingerprint=fingerprint, wait=wait)
        except OperationalError as exc:
            if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:  # a racer still holds the key after the wait
                raise _key_in_use() from exc
            raise
        if record is None:
            return _answer_from_held(scope=scope, key=key, fingerprint=fingerprint)
        token = _REQUEST_TRANSACTION.set(block)
        try:
            response = view_method(view, request, *args, **kwargs)
        finally:
            _REQUEST_TRANSACTION.reset(token)
        if response.status_code >= 400:
            raise _RolledBack(response)
        record.state = IdempotencyRecord.State.COMPLETED
        record.response_status = response.status_code
        record.response_body = _body_of(response)
        record.completed_at = timezone.now()
        record.save(update_fields=["state", "response_status", "response_body", "completed_at"])
    return record, response


def _claim_in_transaction(*, scope: str, key: str, fingerprint: str, wait: float) -> IdempotencyRecord | None:
    """Inserts the `started` row in the open transaction, or None if a committed row holds the key.

    A racer's uncommitted row of the same key is waited for at most `wait` seconds (then 55P03).
    """
    created_at = timezone.now()
    lock_timeout = f"{max(1, int(wait * 1000))}ms"  # 0 would mean no bound at all
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL, [scope, key, fingerprint, IdempotencyRecord.State.STARTED, created_at, lock_timeout]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    record = IdempotencyRecord(
        id=row[0], scope=scope, key=key, fingerprint=fingerprint, created_at=created_at
    )
    record._state.adding, record._state.db = False, "default"
    return record


def _answer_from_held(*, scope: str, key: str, fingerprint: str) -> Response | str:
    """What a request says about the committed row that holds its key ("retry": claim again)."""
    held = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    if held is None:
        return "retry"  # its holder let the key go between our INSERT and this read
    if held.created_at <= timezone.now() - _ttl():
        IdempotencyRecord.objects.filter(pk=held.pk, created_at=held.created_at).delete()
        return "retry"
    if held.fingerprint != fingerprint:
        raise _key_reused()
    if held.state == IdempotencyRecord.State.COMPLETED:
        _cache_completed(held, status=held.response_status, body=held.response_body)
        return _replay(cast(int, held.response_status), held.response_body)
    return "wait"


_READ_ONLY_PREFIXES = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "SET", "SHOW")


class _CommitWatch:
    """Whether any write a request made (on any database alias) was committed.

    Every statement that is not read-only and succeeded registers an on-commit hook: in autocommit
    it runs at once, inside a transaction it runs when the outermost block commits and is dropped
    when the block (or savepoint) holding the write rolls back. A hook still pending when the view
    returns belongs to a write that survived every block of the request (only possible when the
    request itself runs inside a transaction, as under a TestCase), so it counts as committed.
    """

    def __init__(self) -> None:
        self.committed = False
        self._aliases: list[str] = []

    def _mark(self) -> None:
        self.committed = True

    def _wrapper(self, alias: str) -> Callable[..., Any]:
        def wrapper(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any) -> Any:
            result = execute(sql, params, many, context)
            if not str(sql).lstrip().upper().startswith(_READ_ONLY_PREFIXES):
                transaction.on_commit(self._mark, using=alias)
            return result

        return wrapper

    def run(self, call: Callable[[], Any]) -> Any:
        with contextlib.ExitStack() as stack:
            for connection in connections.all():
                stack.enter_context(connection.execute_wrapper(self._wrapper(connection.alias)))
            try:
                return call()
            finally:
                self._collect_pending()

    def _collect_pending(self) -> None:
        for connection in connections.all():
            if any(hook[1] == self._mark for hook in connection.run_on_commit):
                self.committed = True


def _run(
    view: Any, view_method: View, record: IdempotencyRecord, request: Request, args: Any, kwargs: Any
) -> Any:
    watch = _CommitWatch()
    try:
        response = watch.run(lambda: view_method(view, request, *args, **kwargs))
    except Exception as exc:
        try:
            # Render the error here, as DRF would, so the stored body is what the client sees.
            response = view.handle_exception(exc)
        except Exception:
            _settle(record, status=500, body=envelope_for_status(500), committed=watch.committed)
            raise
    _settle(record, status=response.status_code, body=_body_of(response), committed=watch.committed)
    return response


def _settle(record: IdempotencyRecord, *, status: int, body: Any, committed: bool = True) -> None:
    """Stores the response on the claimed row, or frees the key for a request that changed nothing."""
    try:
        if not is_stored(status, body) or (status >= 400 and not committed):
            IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.STARTED).delete()
            return
        # The work this response describes was flushed when it committed; losing this row in a
        # PostgreSQL crash leaves the key `started` (409, never run twice) while the response is
        # still replayed from the cache written below, as after a settle that failed.
        with unflushed_commit():
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                state=IdempotencyRecord.State.COMPLETED,
                response_status=status,
                response_body=body,
                completed_at=timezone.now(),
            )
    except DatabaseError:
        # The work is done; the client still gets its answer. The row stays `started`, so a retry
        # is told 409 rather than run twice.
        logger.exception("idempotency record %s not settled; it answers 409 until it expires", record.pk)
        return
    _cache_completed(record, status=status, body=body)


def _body_of(response: Any) -> Any:
    """The body as the client receives it, as JSON data (what a replay must send back)."""
    if isinstance(response, Response):
        return None if response.data is None else json.loads(JSONRenderer().render(response.data))
    content = getattr(response, "content", b"")
    try:
        return json.loads(content) if content else None
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


# --- the Redis fast path: every call degrades to "not cached" when Redis is down ------------------


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
