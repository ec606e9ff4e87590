"""The database itself keeps the journal append-only and balanced, whoever writes to it."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from apps.ledger.models import JournalEntry, LedgerAccount, Posting
from apps.ledger.services import ledger_post


def _raw(sql: str, *params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _forge(lines) -> None:
    """Writes postings behind ledger_post's back, in a transaction of their own."""
    with transaction.atomic():
        entry = JournalEntry.objects.create(kind="forged", memo="")
        for account, amount, currency in lines:
            Posting.objects.create(entry=entry, account=account, amount=amount, currency=currency)


def _entry() -> JournalEntry:
    a = LedgerAccount.objects.create(kind="wallet", currency="USD")
    b = LedgerAccount.objects.create(kind="wallet", currency="USD")
    return ledger_post(kind="transfer", memo="", lines=[(a, -10), (b, 10)])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        lambda entry: Posting.objects.filter(entry=entry).update(amount=999),
        lambda entry: Posting.objects.filter(entry=entry).delete(),
        lambda entry: JournalEntry.objects.filter(pk=entry.pk).update(memo="rewritten"),
        lambda entry: _raw("DELETE FROM ledger_journalentry WHERE id = %s", entry.pk),
    ],
    ids=["update-posting", "delete-posting", "update-entry", "delete-entry"],
)
def test_entries_and_postings_cannot_be_changed_or_deleted(change):
    entry = _entry()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        change(entry)

    assert sorted(Posting.objects.filter(entry=entry).values_list("amount", flat=True)) == [-10, 10]
    assert JournalEntry.objects.get(pk=entry.pk).memo == ""


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_to_commit_an_unbalanced_entry_written_behind_the_service():
    a = LedgerAccount.objects.create(kind="wallet", currency="USD")

    with pytest.raises(IntegrityError, match="does not balance"):
        _forge([(a, 1_000, "USD")])

    assert not Posting.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_posting_in_another_currency_than_its_account():
    usd = LedgerAccount.objects.create(kind="wallet", currency="USD")
    other = LedgerAccount.objects.create(kind="wallet", currency="USD")

    with pytest.raises(IntegrityError, match="currency"):
        _forge([(usd, -5, "EUR"), (other, 5, "EUR")])

    assert connection.vendor == "postgresql"
    assert not Posting.objects.exists()
