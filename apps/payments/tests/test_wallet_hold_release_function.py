"""What the hold release function (payment_wallet_hold_release_v2) writes is what the rest of Paydesk reads back.

Canceling a wallet payment's hold (a cancel, a reviewer's denial) is one function: the entry, the
amount back in the wallet, its events, the canceled payment and its audit row, in SQL. These tests
hold it to the Python definitions those rows are read with and to its refusal: a frozen wallet's
hold is not released and nothing is written.
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
from apps.payments.services import payment_cancel, payment_create, payment_payload
from apps.wallets.errors import WalletInactive
from apps.wallets.models import Wallet
from apps.wallets.tests.conftest import money_state

pytestmark = pytest.mark.django_db


def _held(user, wallet, amount=800):
    return payment_create(
        actor=user,
        owner=user,
        amount=amount,
        currency="USD",
        payment_method=f"wallet:{wallet.pk}",
        capture_method="manual",
        metadata={"order": "A-1"},
    )


def test_a_cancel_gives_the_hold_back_and_writes_what_the_python_path_wrote(user, funded_wallet):
    wallet = funded_wallet(1_000)
    held = _held(user, wallet)

    payment = payment_cancel(actor=user, owner=user, payment_id=held.pk, reason="changed my mind")

    stored = Payment.objects.get(pk=payment.pk)
    assert PaymentOutputSerializer(payment).data == PaymentOutputSerializer(stored).data
    assert stored.status == "canceled"
    assert stored.metadata == {"order": "A-1", "cancellation_reason": "changed my mind"}
    wallet.refresh_from_db()
    assert wallet.balance == 1_000
    entry = JournalEntry.objects.get(kind="payment_release", memo=f"release {payment.pk}")
    holds = LedgerAccount.objects.get(kind="system", code=SystemAccount.WALLET_HOLDS, currency="USD")
    assert sorted(Posting.objects.filter(entry=entry).values_list("account_id", "amount")) == sorted(
        [(holds.pk, -800), (wallet.ledger_account_id, 800)]
    )
    added = OutboxEvent.objects.get(event_type="wallet.funds_added", payload__journal_entry=entry.pk)
    assert added.payload == {
        "wallet": wallet.pk,
        "amount": 800,
        "currency": "USD",
        "balance": 1_000,
        "journal_entry": entry.pk,
        "reason": "payment_release",
    }
    canceled = OutboxEvent.objects.get(event_type="payment.canceled", aggregate_id=payment.pk)
    assert canceled.payload == payment_payload(stored)
    row = AuditLog.objects.get(action="payment.cancel", entity_id=payment.pk)
    view = {"amount": 800, "amount_captured": 0, "amount_refunded": 0, "currency": "USD", "failure_code": ""}
    assert row.before == {**view, "status": "requires_capture", "pending_operation": ""}
    assert row.after == {**view, "status": "canceled", "pending_operation": ""}
    assert row.hash == chain_hash(row)
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_the_hold_of_a_frozen_wallet_is_not_released_and_nothing_is_written(user, funded_wallet):
    wallet = funded_wallet(1_000)
    held = _held(user, wallet)
    Wallet.objects.filter(pk=wallet.pk).update(status=Wallet.Status.FROZEN)
    before = money_state()

    with pytest.raises(WalletInactive) as refused:
        payment_cancel(actor=user, owner=user, payment_id=held.pk, reason="changed my mind")

    assert refused.value.param == "payment_method"
    assert money_state() == before
    stored = Payment.objects.get(pk=held.pk)
    assert (stored.status, stored.metadata) == ("requires_capture", {"order": "A-1"})
