"""What the wallet hold function (payment_wallet_hold_v2) writes is what the rest of Paydesk reads back.

A new wallet payment that is not captured at once (manual capture, or held for review) has its
amount held by one function: the entry, the balance and its event and, unless held for review,
the `requires_capture` payment and its audit row. These tests hold it to the Python definitions
those rows are read with and to its refusals: a short wallet is refused and nothing is written.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.audit.chain import chain_hash
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, LedgerAccount, Posting, SystemAccount
from apps.payments.models import Payment, Review
from apps.payments.serializers import PaymentOutputSerializer
from apps.payments.services import payment_create
from apps.wallets.errors import InsufficientFunds
from apps.wallets.tests.conftest import money_state

pytestmark = pytest.mark.django_db


def _manual(user, wallet, amount=800):
    return payment_create(
        actor=user,
        owner=user,
        amount=amount,
        currency="USD",
        payment_method=f"wallet:{wallet.pk}",
        capture_method="manual",
    )


def _assert_books_verify():
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_a_manual_payment_holds_its_amount_and_writes_what_the_python_path_wrote(user, funded_wallet):
    wallet = funded_wallet(1_000)

    payment = _manual(user, wallet)

    stored = Payment.objects.get(pk=payment.pk)
    assert PaymentOutputSerializer(payment).data == PaymentOutputSerializer(stored).data
    assert (stored.status, stored.amount_captured, stored.pending_operation) == ("requires_capture", 0, "")
    wallet.refresh_from_db()
    assert wallet.balance == 200
    entry = JournalEntry.objects.get(kind="payment_hold", memo=f"hold for {payment.pk}")
    holds = LedgerAccount.objects.get(kind="system", code=SystemAccount.WALLET_HOLDS, currency="USD")
    assert sorted(Posting.objects.filter(entry=entry).values_list("account_id", "amount")) == sorted(
        [(wallet.ledger_account_id, -800), (holds.pk, 800)]
    )
    deducted = OutboxEvent.objects.get(event_type="wallet.funds_deducted", payload__journal_entry=entry.pk)
    assert deducted.payload == {
        "wallet": wallet.pk,
        "amount": 800,
        "currency": "USD",
        "balance": 200,
        "journal_entry": entry.pk,
        "reason": "payment_hold",
    }
    assert (deducted.aggregate_type, deducted.aggregate_id) == ("wallet", wallet.pk)
    row = AuditLog.objects.get(action="payment.authorize", entity_id=payment.pk)
    view = {"amount": 800, "amount_captured": 0, "amount_refunded": 0, "currency": "USD", "failure_code": ""}
    assert row.before == {**view, "status": "pending", "pending_operation": ""}
    assert row.after == {**view, "status": "requires_capture", "pending_operation": ""}
    assert row.hash == chain_hash(row)
    _assert_books_verify()


def test_a_payment_held_for_review_holds_its_amount_and_opens_its_review(user, funded_wallet, settings):
    settings.REVIEW_AMOUNT_THRESHOLD = 500
    wallet = funded_wallet(1_000)

    payment = payment_create(
        actor=user, owner=user, amount=600, currency="USD", payment_method=f"wallet:{wallet.pk}"
    )

    stored = Payment.objects.get(pk=payment.pk)
    assert PaymentOutputSerializer(payment).data == PaymentOutputSerializer(stored).data
    assert stored.status == "in_review"
    assert Review.objects.filter(payment=stored, status="open").exists()
    wallet.refresh_from_db()
    assert wallet.balance == 400
    assert JournalEntry.objects.filter(kind="payment_hold", memo=f"hold for {payment.pk}").exists()
    assert not AuditLog.objects.filter(action="payment.authorize", entity_id=payment.pk).exists()
    assert AuditLog.objects.filter(action="payment.hold", entity_id=payment.pk).exists()
    _assert_books_verify()


def test_a_hold_bigger_than_the_balance_is_refused_and_nothing_is_written(user, funded_wallet):
    wallet = funded_wallet(300)
    before = money_state()
    payments = Payment.objects.count()

    with pytest.raises(InsufficientFunds) as refused:
        _manual(user, wallet, amount=301)

    assert refused.value.param == "amount"
    assert money_state() == before
    assert Payment.objects.count() == payments
