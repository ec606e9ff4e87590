import pytest
from django.db import transaction

from apps.ledger.errors import LedgerError, MixedCurrencyEntry, UnbalancedEntry
from apps.ledger.models import JournalEntry, LedgerAccount, Posting
from apps.ledger.selectors import ledger_account_balance
from apps.ledger.services import ledger_account_create, ledger_post, ledger_system_account


def _account(currency: str = "USD") -> LedgerAccount:
    return LedgerAccount.objects.create(kind=LedgerAccount.Kind.WALLET, currency=currency)


@pytest.mark.django_db
def test_a_balanced_entry_is_posted_and_balances_are_the_sum_of_postings():
    alice, bob = _account(), _account()
    clearing = ledger_system_account(code="gateway_clearing", currency="USD")

    ledger_post(kind="deposit", memo="in", lines=[(clearing, -500), (alice, 500)])
    entry = ledger_post(kind="transfer", memo="a to b", lines=[(alice, -200), (bob, 200)])

    assert ledger_account_balance(account=alice) == 300
    assert ledger_account_balance(account=bob) == 200
    assert ledger_account_balance(account=clearing) == -500
    assert sorted(entry.postings.values_list("amount", flat=True)) == [-200, 200]
    assert set(entry.postings.values_list("currency", flat=True)) == {"USD"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amounts", "error"),
    [
        ([-100, 99], UnbalancedEntry),
        ([100], UnbalancedEntry),
        ([0, 0], UnbalancedEntry),
        ([-1.5, 1.5], UnbalancedEntry),
        ([True, -1], UnbalancedEntry),
    ],
)
def test_an_entry_that_does_not_balance_is_refused_and_nothing_is_written(amounts, error):
    accounts = [_account() for _ in amounts]

    with pytest.raises(error):
        ledger_post(kind="transfer", memo="", lines=list(zip(accounts, amounts, strict=True)))

    assert not JournalEntry.objects.exists()
    assert not Posting.objects.exists()


@pytest.mark.django_db
def test_an_entry_mixing_currencies_is_refused():
    usd, eur = _account("USD"), _account("EUR")

    with pytest.raises(MixedCurrencyEntry):
        ledger_post(kind="fx", memo="", lines=[(usd, -100), (eur, 100)])

    assert not Posting.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_ledger_writes_refuse_to_run_outside_a_transaction():
    with pytest.raises(LedgerError):
        ledger_account_create(kind=LedgerAccount.Kind.WALLET, currency="USD")
    with transaction.atomic():
        a, b = _account(), _account()
    with pytest.raises(LedgerError):
        ledger_post(kind="transfer", memo="", lines=[(a, -1), (b, 1)])
    assert not JournalEntry.objects.exists()


@pytest.mark.django_db
def test_system_accounts_are_one_per_code_and_currency():
    first = ledger_system_account(code="gateway_clearing", currency="USD")

    assert ledger_system_account(code="gateway_clearing", currency="USD") == first
    assert ledger_system_account(code="gateway_clearing", currency="EUR") != first
    assert ledger_system_account(code="platform_revenue", currency="USD") != first
    assert LedgerAccount.objects.filter(kind="system").count() == 3
