from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F

from apps.ledger.models import JournalEntry, Posting
from apps.wallets.models import Wallet
from apps.wallets.services import wallet_transfer
from apps.wallets.tests.factories import WalletFactory, fund


def _verify(*args: str) -> str:
    out = StringIO()
    call_command("verify_ledger", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def books():
    alice, bob = WalletFactory(currency="USD"), WalletFactory(currency="USD")
    euro = WalletFactory(currency="EUR")
    fund(alice, 1_000)
    fund(euro, 50)
    wallet_transfer(
        actor=None, user=alice.user, source_wallet_id=alice.pk, destination_wallet_id=bob.pk, amount=400
    )
    return alice, bob, euro


@pytest.mark.django_db
def test_clean_books_verify(books):
    output = _verify()

    assert "ledger OK: 3 wallets" in output
    assert "3 entries and 6 postings balance" in output
    assert "(EUR, USD)" in output


@pytest.mark.django_db
def test_a_cached_balance_that_drifted_from_its_postings_is_named(books):
    alice, bob, _ = books
    Wallet.objects.filter(pk=bob.pk).update(balance=F("balance") + 1)

    with pytest.raises(CommandError) as failure:
        _verify()

    message = str(failure.value)
    assert f"wallet {bob.pk}" in message
    assert "caches balance 401 but its postings sum to 400" in message
    assert alice.pk not in message


@pytest.mark.django_db
def test_an_unbalanced_entry_and_the_book_it_unbalances_are_named(books):
    alice, _, _ = books
    with connection.cursor() as cursor:
        # Simulates corruption behind the triggers' back (as a superuser restoring a dump could).
        cursor.execute("SET LOCAL session_replication_role = replica")
    forged = JournalEntry.objects.create(kind="forged", memo="")
    Posting.objects.create(entry=forged, account=alice.ledger_account, amount=5, currency="USD")
    Wallet.objects.filter(pk=alice.pk).update(balance=F("balance") + 5)

    with pytest.raises(CommandError) as failure:
        _verify()

    message = str(failure.value)
    assert f"entry {forged.pk} does not balance: its USD postings sum to 5" in message
    assert "the USD book sums to 5, not 0" in message
    assert f"entry {forged.pk} has 1 posting(s)" in message


@pytest.mark.django_db
def test_big_books_print_progress_per_batch(books):
    output = _verify("--batch-size", "2")

    assert "checked 2/3 wallets" in output
    assert "checked 3/3 wallets" in output
    assert "ledger OK" in output


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("verify_ledger", "--help")

    assert exited.value.code == 0
    assert "cached balance equals the sum" in capsys.readouterr().out
