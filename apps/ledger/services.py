"""Writes to the journal. These are building blocks of other apps' money services.

Unlike the other services they never own a transaction: an entry belongs in the same transaction
as the state change it records (a wallet's balance, a payment's status), so they refuse to run
outside one.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from apps.core.correlation import get_correlation_id
from apps.ledger.errors import LedgerError, MixedCurrencyEntry, UnbalancedEntry
from apps.ledger.models import JournalEntry, LedgerAccount, Posting


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise LedgerError("ledger writes must run inside the transaction of the change they record")


def ledger_account_create(*, kind: str, currency: str, code: str = "") -> LedgerAccount:
    _require_transaction()
    return LedgerAccount.objects.create(kind=kind, currency=currency, code=code)


def ledger_system_account(*, code: str, currency: str) -> LedgerAccount:
    """The named system account for a currency, created the first time it is needed.

    get_or_create on the unique (code, currency): two transactions creating it at once both end
    with the same row (the loser's INSERT waits, fails on the index and reads the winner's).
    """
    _require_transaction()
    account, _ = LedgerAccount.objects.get_or_create(
        kind=LedgerAccount.Kind.SYSTEM, code=code, currency=currency
    )
    return account


def ledger_post(*, kind: str, memo: str, lines: Sequence[tuple[LedgerAccount, int]]) -> JournalEntry:
    """Records one balanced entry: each line adds its signed amount to its account's balance.

    Refuses (LedgerError) an entry with fewer than two lines, a zero or non-integer amount,
    accounts in different currencies, or amounts that do not sum to zero.
    """
    _require_transaction()
    if len(lines) < 2:
        raise UnbalancedEntry("an entry needs at least two postings")
    currencies = {account.currency for account, _ in lines}
    if len(currencies) != 1:
        raise MixedCurrencyEntry(f"an entry posts in one currency, got {sorted(currencies)}")
    for _, amount in lines:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
            raise UnbalancedEntry(f"posting amounts are non-zero integers, got {amount!r}")
    total = sum(amount for _, amount in lines)
    if total != 0:
        raise UnbalancedEntry(f"postings sum to {total}, not 0")
    (currency,) = currencies
    entry = JournalEntry.objects.create(kind=kind, memo=memo[:500], correlation_id=get_correlation_id() or "")
    Posting.objects.bulk_create(
        Posting(entry=entry, account=account, amount=amount, currency=currency) for account, amount in lines
    )
    return entry
