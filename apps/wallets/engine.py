"""Calls of the money engine's PostgreSQL functions, and the one mapping of their refusals.

A money movement written as one PostgreSQL function (created and versioned by migrations) runs in
one round trip: locks, checks and every write of the movement happen in the database, inside the
calling service's transaction. The service stays the only caller and the only place that decides
what to call. A function refuses by raising an exception with a SQLSTATE of class `PW` and the
refused parameter as its COLUMN; `call` turns those into the API's errors here, once.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, transaction

from apps.core.errors import ApplicationError
from apps.wallets.errors import CurrencyMismatch, InsufficientFunds, WalletInactive, WalletNotFound

# SQLSTATE -> (error, whether the function's message is the API's message)
REFUSALS: dict[str, tuple[type[ApplicationError], bool]] = {
    "PW001": (WalletNotFound, True),
    "PW002": (WalletInactive, True),
    "PW003": (CurrencyMismatch, True),
    "PW004": (InsufficientFunds, False),
}


def call(sql: str, params: list[Any]) -> tuple[Any, ...]:
    """Runs one engine function (`SELECT * FROM f(...)`) and returns its one row.

    Runs inside the caller's transaction; a refusal raises the mapped `ApplicationError`, which
    rolls that transaction back like any other refusal. Any other database error propagates.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("engine functions run inside the calling service's transaction")
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except DatabaseError as exc:
        refusal = _refusal(exc)
        if refusal is None:
            raise
        raise refusal from None
    if row is None:
        raise RuntimeError(f"engine function returned no row: {sql.split('(')[0]}")
    return tuple(row)


def _refusal(exc: DatabaseError) -> ApplicationError | None:
    cause = exc.__cause__
    mapped = REFUSALS.get(getattr(cause, "sqlstate", None) or "")
    if mapped is None:
        return None
    error, with_message = mapped
    diag = getattr(cause, "diag", None)
    message = getattr(diag, "message_primary", None) if with_message else None
    return error(message, param=getattr(diag, "column_name", None))
