"""Calls of the money engine's PostgreSQL functions, and the one mapping of their refusals.

A money movement written as one PostgreSQL function (created and versioned by migrations) runs in
one round trip: locks, checks and every write of the movement happen in the database, inside the
calling service's transaction. The service stays the only caller and the only place that decides
what to call. A function refuses with a SQLSTATE of class `PW` and the refused parameter (raised
as the exception's COLUMN, or returned as a row's values by a function that reports per item);
`refusal` turns those into the API's errors, here and nowhere else.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, transaction

from apps.audit.chain import CHAINS
from apps.audit.services import CHAIN_LOCK_KEY, AuditContext
from apps.core.errors import ApplicationError
from apps.wallets.errors import (
    CurrencyMismatch,
    InsufficientFunds,
    SameWallet,
    WalletInactive,
    WalletNotFound,
)

REFUSALS: dict[str, type[ApplicationError]] = {
    "PW001": WalletNotFound,
    "PW002": WalletInactive,
    "PW003": CurrencyMismatch,
    "PW004": InsufficientFunds,
    "PW005": SameWallet,
}


def refusal(sqlstate: str, *, param: str | None, message: str | None) -> ApplicationError:
    """The API's error for an engine function's refusal."""
    return REFUSALS[sqlstate](message, param=param)


def audit_args(who: AuditContext) -> list[Any]:
    """The last eight parameters of an engine function that appends an audit row (`audit_append`):
    who acts and through which request, the number of chains and their lock key."""
    return [
        who.actor_type,
        who.actor_id,
        who.actor_repr,
        who.correlation_id,
        who.ip,
        who.user_agent,
        CHAINS,
        CHAIN_LOCK_KEY,
    ]


def call(sql: str, params: list[Any]) -> tuple[Any, ...]:
    """Runs one engine function (`SELECT * FROM f(...)`) and returns its one row."""
    rows = call_rows(sql, params)
    if len(rows) != 1:
        raise RuntimeError(f"engine function returned {len(rows)} rows, not 1: {sql.split('(')[0]}")
    return rows[0]


def call_rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Runs one engine function and returns its rows.

    Runs inside the caller's transaction; a raised refusal becomes the mapped `ApplicationError`,
    which rolls that transaction back like any other refusal. Any other database error propagates.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("engine functions run inside the calling service's transaction")
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]
    except DatabaseError as exc:
        cause = exc.__cause__
        sqlstate = getattr(cause, "sqlstate", None) or ""
        if sqlstate not in REFUSALS:
            raise
        diag = getattr(cause, "diag", None)
        raise refusal(
            sqlstate,
            param=getattr(diag, "column_name", None),
            message=getattr(diag, "message_primary", None),
        ) from None
