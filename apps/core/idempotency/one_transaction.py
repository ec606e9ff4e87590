"""A pure-database request (`@idempotent(atomic=True)`): claim, work and stored answer in one
transaction; a racer with the same key waits on the unique index, then replays what committed."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar, cast

from django.db import OperationalError, transaction
from django.db.transaction import Atomic
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.correlation import get_correlation_id
from apps.core.idempotency.records import (
    _FIRST_POLL_SECONDS,
    _MAX_POLL_SECONDS,
    View,
    _key_in_use,
    _key_reused,
    _rendered_body,
    _replay,
    _ttl,
    _wait_seconds,
)
from apps.core.models import IdempotencyRecord

logger = logging.getLogger(__name__)

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
    'INSERT INTO "core_idempotencyrecord" ("scope", "key", "fingerprint", "state", "created_at", "correlation_id") '
    "SELECT %s, %s, %s, %s, %s, %s FROM ("
    "SELECT set_config('paydesk.lock_timeout', current_setting('lock_timeout'), true), "
    "set_config('lock_timeout', %s, true)) AS bound "
    'ON CONFLICT ("scope", "key") DO NOTHING '
    "RETURNING \"id\", set_config('lock_timeout', current_setting('paydesk.lock_timeout'), true)"
)


# The answer stored on the claimed row, its body as the client receives it (rendered once, as text).
_COMPLETE_SQL = (
    'UPDATE "core_idempotencyrecord" SET "state" = \'completed\', "response_status" = %s, '
    '"response_body" = %s::jsonb, "completed_at" = %s WHERE "id" = %s'
)


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
        if isinstance(outcome, Response):
            return outcome
        if outcome == "wait":  # a committed `started` row: its holder is not in this mode
            if time.monotonic() >= deadline:
                raise _key_in_use()
            time.sleep(pause)
            pause = min(pause * 2, _MAX_POLL_SECONDS)


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
) -> Any:
    """The view's response, a replay or refusal (`Response`), or what to do next ("wait", "retry")."""
    block = transaction.atomic(durable=True)
    with block:
        try:
            claimed = _claim_in_transaction(scope=scope, key=key, fingerprint=fingerprint, wait=wait)
        except OperationalError as exc:
            if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:  # a racer still holds the key after the wait
                raise _key_in_use() from exc
            raise
        if claimed is None:
            return _answer_from_held(scope=scope, key=key, fingerprint=fingerprint)
        token = _REQUEST_TRANSACTION.set(block)
        try:
            response = view_method(view, request, *args, **kwargs)
        finally:
            _REQUEST_TRANSACTION.reset(token)
        if response.status_code >= 400:
            raise _RolledBack(response)
        with transaction.get_connection().cursor() as cursor:
            cursor.execute(
                _COMPLETE_SQL, [response.status_code, _rendered_body(response), timezone.now(), claimed]
            )
    return response


def _claim_in_transaction(*, scope: str, key: str, fingerprint: str, wait: float) -> int | None:
    """Inserts the `started` row in the open transaction and returns its id, or None if a
    committed row holds the key.

    A racer's uncommitted row of the same key is waited for at most `wait` seconds (then 55P03).
    """
    created_at, correlation_id = timezone.now(), get_correlation_id() or ""
    lock_timeout = f"{max(1, int(wait * 1000))}ms"  # 0 would mean no bound at all
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            [
                scope,
                key,
                fingerprint,
                IdempotencyRecord.State.STARTED,
                created_at,
                correlation_id,
                lock_timeout,
            ],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


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
        return _replay(cast(int, held.response_status), held.response_body)
    return "wait"
