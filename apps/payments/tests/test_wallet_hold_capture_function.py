"""What the hold capture function (payment_wallet_hold_capture_v2) writes is what the rest of Paydesk reads back.

Capturing a wallet payment's hold (a manual capture, a reviewer's approval) is one function: the
entry, the rest given back to the wallet, its events, the succeeded payment and its audit row, in
SQL. These tests hold it to the Python definitions those rows are read with and to its refusal: a
frozen wallet's hold is not captured and nothing is written.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.audit.chain import chain_hash
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, LedgerAccount, Posting, SystemAccount
from apps.payments.models import Payment
from apps.payments.serializers import PaymentOutputSerializer
from apps.payments.services import payment_capture, payment_create, payment_payload
from apps.wallets.errors import WalletInactive
from apps.wallets.models import Wallet
from apps.wallets.tests.conftest import money_state

pytestmark = pytest.mark.django_db


def _held(user, wallet, amount=800):
    payment = payment_create(
        actor=user,
        owner=user,
        amount=amount,
        currency="USD",
        payment_method=f"wallet:{wallet.pk}",
        capture_method="manual",
    )
    assert payment.status == "requires_capture"
    return payment


def _account(code: str) -> str:
    return LedgerAccount.objects.get(kind="system", code=code, currency="USD").pk


def test_a_partial_capture_gives_the_rest_back_and_writes_what_the_python_path_wrote(user, funded_wallet):
    wallet = funded_wallet(1_000)
    held = _held(user, wallet)

    payment = payment_capture(actor=user, owner=user, payment_id=held.pk, amount=500)

    stored = Payment.objects.get(pk=payment.pk)
    assert PaymentOutputSerializer(payment).data == PaymentOutputSerializer(stored).data
    assert (stored.status, stored.amount_captured) == ("succeeded", 500)
    wallet.refresh_from_db()
    assert wallet.balance == 1_000 - 800 + 300
    entry = JournalEntry.objects.get(kind="payment_capture", memo=f"payment {payment.pk}")
    assert sorted(Posting.objects.filter(entry=entry).values_list("account_id", "amount")) == sorted(
        [
            (_account(SystemAccount.WALLET_HOLDS), -800),
            (_account(SystemAccount.PLATFORM_REVENUE), 500),
            (wallet.ledger_account_id, 300),
        ]
    )
    added = OutboxEvent.objects.get(event_type="wallet.funds_added", payload__journal_entry=entry.pk)
    assert added.payload == {
        "wallet": wallet.pk,
        "amount": 300,
        "currency": "USD",
        "balance": 500,
        "journal_entry": entry.pk,
        "reason": "payment_capture",
    }
    succeeded = OutboxEvent.objects.get(event_type="payment.succeeded", aggregate_id=payment.pk)
    assert succeeded.payload == payment_payload(stored)
    row = AuditLog.objects.get(action="payment.capture", entity_id=payment.pk)
    view = {
        "amount": 800,
        "amount_captured": 500,
        "amount_refunded": 0,
        "currency": "USD",
        "failure_code": "",
    }
    assert row.before == {**view, "status": "requires_capture", "pending_operation": ""}
    assert row.after == {**view, "status": "succeeded", "pending_operation": ""}
    assert row.hash == chain_hash(row)
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_a_full_capture_gives_nothing_back_and_announces_no_wallet_change(user, funded_wallet):
    wallet = funded_wallet(1_000)
    held = _held(user, wallet)
    added_before = OutboxEvent.objects.filter(event_type="wallet.funds_added").count()

    payment_capture(actor=user, owner=user, payment_id=held.pk)

    entry = JournalEntry.objects.get(kind="payment_capture", memo=f"payment {held.pk}")
    assert sorted(Posting.objects.filter(entry=entry).values_list("amount", flat=True)) == [-800, 800]
    assert OutboxEvent.objects.filter(event_type="wallet.funds_added").count() == added_before
    wallet.refresh_from_db()
    assert wallet.balance == 200


def test_the_hold_of_a_frozen_wallet_is_not_captured_and_nothing_is_written(user, funded_wallet):
    wallet = funded_wallet(1_000)
    held = _held(user, wallet)
    Wallet.objects.filter(pk=wallet.pk).update(status=Wallet.Status.FROZEN)
    before = money_state()

    with pytest.raises(WalletInactive) as refused:
        payment_capture(actor=user, owner=user, payment_id=held.pk, amount=500)

    assert (refused.value.param, refused.value.message) == (
        "payment_method",
        f"Wallet {wallet.pk} is frozen.",
    )
    assert money_state() == before
    assert Payment.objects.get(pk=held.pk).status == "requires_capture"
