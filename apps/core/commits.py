"""Commits that need not wait for the WAL flush: bookkeeping whose loss a crash can only delay.

PostgreSQL makes a commit durable by flushing the write-ahead log before it answers; every money
transaction pays that wait, as it must. Some writes only record that work already durable has
happened (an idempotency key's stored response, an event's delivery): if PostgreSQL itself crashed
within a fraction of a second of such a commit, the row would be lost and the work would be
answered or re-sent again by the mechanism that already covers a process dying at that moment.
Those writes use `unflushed_commit()` so the request or the worker does not wait for a flush.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction


@contextmanager
def unflushed_commit() -> Iterator[None]:
    """A transaction committed with `synchronous_commit = off` (PostgreSQL; elsewhere a plain one).

    Inside a caller's transaction it changes nothing: that commit, and its durability, are the
    caller's. Visibility is unchanged: other sessions see the rows as soon as it commits.
    """
    connection = transaction.get_connection()
    if connection.in_atomic_block or connection.vendor != "postgresql":
        with transaction.atomic():
            yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield
