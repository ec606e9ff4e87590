"""What the wallet refund function (payment_wallet_refund_v2) writes is what the rest of Paydesk reads back.

A wallet payment's refund is one function: the entry, the amount back in the wallet (even a
frozen one), its events, the succeeded refund, the payment's refunded amount and status and its
audit row, in SQL. These tests hold it to the Python definitions those rows are read with.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.audit.chain import chain_hash
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, LedgerAccount, Posting, SystemAccount
from apps.payments.models import Payment, Refund
from apps.payments.serializers import RefundOutputSerializer
from apps.payments.services import payment_create, payment_payload, payment_refund
from apps.wallets.models import Wallet

pytestmark = pytest.mark.django_db


def _paid(user, wallet, amount=800):
    return payment_create(
        actor=user, owner=user, amount=amount, currency="USD", payment_method=f"wallet:{wallet.pk}"
    )


def test_a_refund_credits_the_wallet_and_writes_what_the_python_path_wrote(user, funded_wallet):
    wallet = funded_wallet(1_000)
    paid = _paid(user, wallet)

    refund = payment_refund(actor=user, owner=user, payment_id=paid.pk, amount=300)

    stored = Refund.objects.get(pk=refund.pk)
    assert RefundOutputSerializer(refund).data == RefundOutputSerializer(stored).data
    assert stored.status == "succeeded"
    payment = Payment.objects.get(pk=paid.pk)
    assert (payment.status, payment.amount_refunded) == ("succeeded", 300)
    wallet.refresh_from_db()
    assert wallet.balance == 1_000 - 800 + 300
    entry = JournalEntry.objects.get(kind="refund", memo=f"refund {refund.pk}")
    revenue = LedgerAccount.objects.get(kind="system", code=SystemAccount.PLATFORM_REVENUE, currency="USD")
    assert sorted(Posting.objects.filter(entry=entry).values_list("account_id", "amount")) == sorted(
        [(revenue.pk, -300), (wallet.ledger_account_id, 300)]
    )
    added = OutboxEvent.objects.get(event_type="wallet.funds_added", payload__journal_entry=entry.pk)
    assert added.payload == {
        "wallet": wallet.pk,
        "amount": 300,
        "currency": "USD",
        "balance": 500,
        "journal_entry": entry.pk,
        "reason": "refund",
    }
    refunded = OutboxEvent.objects.get(event_type="payment.refunded", aggregate_id=payment.pk)
    assert refunded.payload == {**payment_payload(payment), "refund": refund.pk, "refund_amount": 300}
    row = AuditLog.objects.get(action="payment.refund", entity_id=payment.pk)
    view = {
        "amount": 800,
        "amount_captured": 800,
        "amount_refunded": 300,
        "currency": "USD",
        "failure_code": "",
    }
    assert row.before == {**view, "status": "succeeded", "pending_operation": ""}
    assert row.after == {
        **view,
        "status": "succeeded",
        "pending_operation": "",
        "refund": refund.pk,
        "refund_amount": 300,
    }
    assert row.hash == chain_hash(row)
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_refunding_the_rest_into_a_frozen_wallet_refunds_the_payment(user, funded_wallet):
    wallet = funded_wallet(1_000)
    paid = _paid(user, wallet)
    Wallet.objects.filter(pk=wallet.pk).update(status=Wallet.Status.FROZEN)

    refund = payment_refund(actor=user, owner=user, payment_id=paid.pk)

    payment = Payment.objects.get(pk=paid.pk)
    assert (refund.status, refund.amount) == ("succeeded", 800)
    assert (payment.status, payment.amount_refunded) == ("refunded", 800)
    wallet.refresh_from_db()
    assert (wallet.status, wallet.balance) == ("frozen", 1_000)
