"""Property: whatever sequence of deposits, declines, transfers (good or refused) and freezes
happens, the books keep their invariants and agree with a plain model of the balances.

Hypothesis runs every example inside the same test transaction, so each example works on
wallets of its own and checks the book-wide sums (which hold across examples too).
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.errors import ApplicationError
from apps.gateways.base import GatewayResult
from apps.ledger.selectors import ledger_account_balances, ledger_currency_totals, ledger_unbalanced_entries
from apps.wallets.models import Wallet
from apps.wallets.services import (
    wallet_deposit_settle,
    wallet_deposit_start,
    wallet_freeze,
    wallet_transfer,
    wallet_unfreeze,
)
from apps.wallets.tests.factories import UserFactory, WalletFactory

CURRENCIES = ["USD", "USD", "EUR"]  # two USD wallets can trade; the EUR one mismatches
amounts = st.integers(min_value=1, max_value=5_000)
wallet_index = st.integers(min_value=0, max_value=len(CURRENCIES) - 1)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), wallet_index, amounts, st.booleans()),
        st.tuples(st.just("transfer"), wallet_index, wallet_index, amounts),
        st.tuples(st.just("freeze"), wallet_index, st.booleans()),
    ),
    max_size=25,
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_sequence_of_operations_keeps_the_books(ops):
    wallets = [WalletFactory(currency=currency) for currency in CURRENCIES]
    staff = UserFactory(is_staff=True, is_superuser=True)
    expected = [0] * len(wallets)
    frozen = [False] * len(wallets)

    for op in ops:
        if op[0] == "deposit":
            _, i, amount, charged = op
            try:
                txn = wallet_deposit_start(
                    actor=None, user=wallets[i].user, wallet_id=wallets[i].pk, amount=amount
                )
            except ApplicationError:
                assert frozen[i]
                continue
            assert not frozen[i]
            result = GatewayResult(status="captured") if charged else GatewayResult(status="failed")
            wallet_deposit_settle(actor=None, transaction_id=txn.pk, result=result)
            expected[i] += amount if charged else 0
        elif op[0] == "transfer":
            _, i, j, amount = op
            allowed = (
                i != j
                and not frozen[i]
                and not frozen[j]
                and CURRENCIES[i] == CURRENCIES[j]
                and expected[i] >= amount
            )
            try:
                wallet_transfer(
                    actor=None,
                    user=wallets[i].user,
                    source_wallet_id=wallets[i].pk,
                    destination_wallet_id=wallets[j].pk,
                    amount=amount,
                )
            except ApplicationError:
                assert not allowed
            else:
                assert allowed
                expected[i] -= amount
                expected[j] += amount
        else:
            _, i, freeze = op
            service = wallet_freeze if freeze else wallet_unfreeze
            service(actor=staff, wallet_id=wallets[i].pk, note="property test")
            frozen[i] = freeze

    rows = {w.pk: w for w in Wallet.objects.filter(pk__in=[w.pk for w in wallets])}
    cached = [rows[w.pk].balance for w in wallets]
    derived = ledger_account_balances(account_ids=[w.ledger_account_id for w in wallets])
    assert cached == expected
    assert all(balance >= 0 for balance in cached)
    assert [derived[w.ledger_account_id] for w in wallets] == cached
    assert list(ledger_unbalanced_entries()) == []
    assert all(total == 0 for total in ledger_currency_totals().values())


@pytest.mark.django_db
def test_verify_ledger_agrees_after_a_mixed_history():
    a, b = WalletFactory(), WalletFactory()
    txn = wallet_deposit_start(actor=None, user=a.user, wallet_id=a.pk, amount=100)
    wallet_deposit_settle(actor=None, transaction_id=txn.pk, result=GatewayResult(status="captured"))
    wallet_transfer(actor=None, user=a.user, source_wallet_id=a.pk, destination_wallet_id=b.pk, amount=60)
    out = StringIO()

    call_command("verify_ledger", stdout=out)

    assert "ledger OK" in out.getvalue()
