"""Reads of the journal, including the one definition of an account's balance."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F, QuerySet, Sum

from apps.ledger.models import JournalEntry, LedgerAccount, Posting


def ledger_account_balances(*, account_ids: Iterable[str]) -> dict[str, int]:
    """The balance of an account is the sum of its postings' signed amounts, nothing else.

    Every other balance in Paydesk (a wallet's cached `balance`) is a copy of this number, proven
    equal to it by `manage.py verify_ledger`. Accounts without postings have a balance of 0.
    """
    ids = list(account_ids)
    balances = dict.fromkeys(ids, 0)
    rows = (
        Posting.objects.filter(account_id__in=ids)
        .values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    balances.update(rows)
    return balances


def ledger_account_balance(*, account: LedgerAccount) -> int:
    return ledger_account_balances(account_ids=[account.pk])[account.pk]


def ledger_system_account_balances(*, code: str) -> dict[str, int]:
    """Per currency, the balance of the system account `code` (currencies it has no account in: absent)."""
    accounts = dict(
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SYSTEM, code=code).values_list("pk", "currency")
    )
    balances = ledger_account_balances(account_ids=accounts)
    return {currency: balances[pk] for pk, currency in accounts.items()}


def ledger_unbalanced_entries() -> QuerySet:
    """(entry_id, currency, total) for every entry whose postings do not sum to zero in a currency."""
    return (
        Posting.objects.values("entry_id", "currency")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .order_by("entry_id")
        .values_list("entry_id", "currency", "total")
    )


def ledger_entries_without_postings() -> QuerySet[JournalEntry, tuple[str, int]]:
    """(entry_id, postings) for every entry with fewer than the two postings an entry needs."""
    return (
        JournalEntry.objects.annotate(lines=Count("postings"))
        .filter(lines__lt=2)
        .order_by("id")
        .values_list("id", "lines")
    )


def ledger_postings_in_foreign_currency() -> QuerySet[Posting]:
    """Postings whose currency is not their account's: a book cannot add them up."""
    return Posting.objects.exclude(currency=F("account__currency")).order_by("id")


def ledger_currency_totals() -> dict[str, int]:
    """Each currency's whole book: zero when every entry balances."""
    return dict(
        Posting.objects.values("currency")
        .annotate(total=Sum("amount"))
        .order_by("currency")
        .values_list("currency", "total")
    )


def ledger_counts() -> dict[str, int]:
    return {"entries": JournalEntry.objects.count(), "postings": Posting.objects.count()}
