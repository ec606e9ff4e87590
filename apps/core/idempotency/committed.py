"""A request that calls a gateway: its key is claimed by a committed `started` row before the view
runs, and its answer is stored after, once its work has committed (`_CommitWatch`)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.commits import unflushed_commit
from apps.core.correlation import get_correlation_id
from apps.core.exception_handler import envelope_for_status
from apps.core.idempotency.records import (
    _FIRST_POLL_SECONDS,
    _MAX_POLL_SECONDS,
    View,
    _body_of,
    _cache_completed,
    _key_in_use,
    _key_reused,
    _replay,
    _ttl,
    _wait_seconds,
    is_stored,
)
from apps.core.models import IdempotencyRecord

logger = logging.getLogger(__name__)


def _claim(*, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    """Inserts the `started` row, or answers from the row another request holds."""
    deadline = time.monotonic() + _wait_seconds()
    pause = _FIRST_POLL_SECONDS
    while True:
        try:
            # Durable: the claim must be committed, visible to every other process, before the view
            # runs; inside a caller's transaction it would not be, so that is refused.
            with transaction.atomic(durable=True):
                return IdempotencyRecord.objects.create(
                    scope=scope, key=key, fingerprint=fingerprint, correlation_id=get_correlation_id() or ""
                )
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
