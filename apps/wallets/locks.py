"""Row locks for money, always taken in one order: wallets by id, then the transaction row.

Two transfers A→B and B→A both lock min(A, B) first, so neither can hold one row while waiting
for the other: no deadlock, and each checks the balance on a row nobody else can change.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from django.db import OperationalError

from apps.core.idempotency import in_request_transaction
from apps.wallets.models import Transaction, Wallet

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# deadlock_detected, serialization_failure: the transaction was rolled back and may simply rerun.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def lock_wallets(ids: Iterable[str]) -> dict[str, Wallet]:
    """Locks the wallets (FOR UPDATE, ordered by id, evaluated at once); missing ids are absent.

    Only wallet rows are locked (`of=("self",)`): the joined ledger account is read, not locked.
    """
    rows = list(
        Wallet.objects.filter(pk__in=set(ids))
        .select_related("ledger_account")
        .order_by("pk")
        .select_for_update(of=("self",))
    )
    return {wallet.pk: wallet for wallet in rows}


def lock_transaction(transaction_id: str) -> Transaction:
    return Transaction.objects.select_for_update().get(pk=transaction_id)


def _is_retryable(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) in RETRYABLE_SQLSTATES


def retry_on_lock_conflict(
    attempts: int = 3, backoff: float = 0.02
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Reruns a whole durable service when PostgreSQL aborted it for a deadlock or serialization
    failure, so that never reaches the client. Ordered locking should make it unnecessary; this
    is the belt to those braces (e.g. a lock order some future code gets wrong).
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(1, attempts + 1):
                try:
                    return func(*args, **kwargs)
                except OperationalError as exc:
                    # Joined into an idempotent request's transaction, that one is aborted: the
                    # decorator that opened it reruns it whole.
                    if attempt == attempts or not _is_retryable(exc) or in_request_transaction():
                        raise
                    logger.warning("%s: lock conflict (attempt %d), retrying", func.__name__, attempt)
                    time.sleep(backoff * attempt)
            raise AssertionError("unreachable")

        return wrapper

    return decorate
