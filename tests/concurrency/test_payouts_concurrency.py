"""Payouts racing transfers, wallet payments and each other from one wallet, on real PostgreSQL
connections: the wallet is never overdrawn, every cent is accounted for, `verify_ledger` is clean."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command

from apps.ledger.selectors import ledger_system_account_balances
from apps.payments.models import Payment
from apps.payments.services import payment_create
from apps.payouts.errors import PayoutUnexpectedState
from apps.payouts.models import Payout
from apps.payouts.services import payout_cancel, payout_create, payout_send, payouts_sweep
from apps.wallets.errors import InsufficientFunds
from apps.wallets.models import Transaction
from apps.wallets.services import wallet_transfer
from apps.wallets.tests.factories import WalletFactory, fund
from tests.concurrency.test_transfers_concurrency import run_threads

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]

START = 20_000


def test_payouts_transfers_and_wallet_payments_from_one_wallet_never_overdraw_and_keep_the_books():
    wallet = WalletFactory()
    other = WalletFactory()
    fund(wallet, START)
    owner = wallet.user
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def work(index: int) -> None:
        for round_ in range(8):
            kind = (index + round_) % 4
            try:
                if kind == 0:
                    payout_create(
                        actor=owner, user=owner, wallet_id=wallet.pk, amount=1_300, destination="btok_success"
                    )
                elif kind == 1:
                    failed = payout_create(
                        actor=owner,
                        user=owner,
                        wallet_id=wallet.pk,
                        amount=900,
                        destination="btok_accountClosed",
                    )
                    assert failed.pk
                elif kind == 2:
                    wallet_transfer(
                        actor=owner,
                        user=owner,
                        source_wallet_id=wallet.pk,
                        destination_wallet_id=other.pk,
                        amount=700,
                    )
                else:
                    payment_create(
                        actor=owner,
                        owner=owner,
                        amount=500,
                        currency="USD",
                        payment_method=f"wallet:{wallet.pk}",
                    )
                outcome = f"{kind}:done"
            except InsufficientFunds:
                outcome = f"{kind}:insufficient_funds"
            with lock:
                outcomes[outcome] += 1

    assert run_threads(6, work) == []
    # Whatever a lost task left behind, the sweep settles (nothing should be left).
    payouts_sweep()

    wallet.refresh_from_db()
    other.refresh_from_db()
    assert wallet.balance >= 0
    paid = sum(Payout.objects.filter(wallet=wallet, status="paid").values_list("amount", flat=True))
    transferred = sum(
        Transaction.objects.filter(source_wallet=wallet, type="transfer", status="completed").values_list(
            "amount", flat=True
        )
    )
    spent = sum(
        Payment.objects.filter(wallet=wallet, status="succeeded").values_list("amount_captured", flat=True)
    )
    # Exact to the cent: what is left is what came in less what left, by every road.
    assert wallet.balance == START - paid - transferred - spent
    assert other.balance == transferred
    assert set(Payout.objects.values_list("status", flat=True)) <= {"paid", "failed"}
    assert not Payout.objects.filter(status="failed", destination_last4="6789").exists()
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}
    assert outcomes["0:done"] > 0
    assert outcomes["2:done"] > 0
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()
    assert "payouts_in_transit" in out.getvalue()


def test_a_cancel_racing_the_worker_either_cancels_or_lets_it_be_paid_never_both():
    wallet = WalletFactory()
    fund(wallet, 10_000)
    owner = wallet.user
    # Held for the race: created without its worker (as if its task were still queued).
    payouts = []
    for _ in range(5):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("apps.payouts.consumers.send_payout_now", lambda payout_id: True)
            payouts.append(
                payout_create(
                    actor=owner, user=owner, wallet_id=wallet.pk, amount=1_000, destination="btok_success"
                )
            )

    def work(index: int) -> None:
        for payout in payouts:
            if index == 0:
                with contextlib.suppress(PayoutUnexpectedState):  # too late: the worker took it
                    payout_cancel(actor=owner, user=owner, payout_id=payout.pk)
            else:
                payout_send(actor=None, payout_id=payout.pk)

    assert run_threads(2, work) == []

    statuses = list(Payout.objects.values_list("status", flat=True))
    assert set(statuses) <= {"paid", "canceled"}
    wallet.refresh_from_db()
    assert wallet.balance == 10_000 - 1_000 * statuses.count("paid")
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}
    call_command("verify_ledger", stdout=StringIO())
