"""What the wallet capture function (payment_wallet_capture_v2) writes is what the rest of Paydesk reads back.

A new automatic wallet payment is paid by one function: the entry and postings, the wallet's
balance, its events, the succeeded payment and its audit row, in SQL. These tests hold it to the
Python definitions those rows are read with (the API serializer, the event payloads, the audit
chain's hash, the ledger's own check) and to its refusals: a frozen or short wallet is refused in
the API's envelope and nothing at all is written.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.audit.chain import chain_hash
from apps.audit.models import AuditLog
from apps.core.correlation import reset_correlation_id, set_correlation_id
from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, LedgerAccount, Posting, SystemAccount
from apps.payments.models import Payment
from apps.payments.serializers import PaymentOutputSerializer
from apps.payments.services import payment_create, payment_payload
from apps.wallets.errors import InsufficientFunds, WalletInactive
from apps.wallets.models import Wallet
from apps.wallets.tests.conftest import money_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def correlation():
    token = set_correlation_id("corr-wallet-pay-fn")
    yield
    reset_correlation_id(token)


def _pay(user, wallet, amount=400):
    return payment_create(
        actor=user, owner=user, amount=amount, currency="USD", payment_method=f"wallet:{wallet.pk}"
    )


def test_the_returned_payment_is_the_row_the_function_wrote(user, funded_wallet, correlation):
    wallet = funded_wallet(1_000)

    payment = _pay(user, wallet)

    stored = Payment.objects.get(pk=payment.pk)
    assert PaymentOutputSerializer(payment).data == PaymentOutputSerializer(stored).data
    assert (stored.status, stored.amount_captured, stored.method_type) == ("succeeded", 400, "wallet")
    wallet.refresh_from_db()
    assert wallet.balance == 600
    entry = JournalEntry.objects.get(kind="payment_capture", memo=f"payment {payment.pk}")
    revenue = LedgerAccount.objects.get(kind="system", code=SystemAccount.PLATFORM_REVENUE, currency="USD")
    assert entry.correlation_id == "corr-wallet-pay-fn"
    assert sorted(Posting.objects.filter(entry=entry).values_list("account_id", "amount")) == sorted(
        [(wallet.ledger_account_id, -400), (revenue.pk, 400)]
    )


def test_its_events_and_audit_row_are_those_the_python_path_wrote(user, funded_wallet, correlation):
    wallet = funded_wallet(1_000)

    payment = _pay(user, wallet)

    stored = Payment.objects.get(pk=payment.pk)
    succeeded = OutboxEvent.objects.get(event_type="payment.succeeded", aggregate_id=payment.pk)
    assert succeeded.payload == payment_payload(stored)
    deducted = OutboxEvent.objects.get(event_type="wallet.funds_deducted", aggregate_id=wallet.pk)
    entry = JournalEntry.objects.get(kind="payment_capture", memo=f"payment {payment.pk}")
    assert deducted.payload == {
        "wallet": wallet.pk,
        "amount": 400,
        "currency": "USD",
        "balance": 600,
        "journal_entry": entry.pk,
        "reason": "payment_capture",
    }
    assert {succeeded.correlation_id, deducted.correlation_id} == {"corr-wallet-pay-fn"}
    row = AuditLog.objects.get(action="payment.capture", entity_id=payment.pk)
    view = {
        "amount": 400,
        "amount_captured": 400,
        "amount_refunded": 0,
        "currency": "USD",
        "failure_code": "",
    }
    assert row.before == {**view, "status": "pending", "pending_operation": ""}
    assert row.after == {**view, "status": "succeeded", "pending_operation": ""}
    assert (row.actor_type, row.actor_id) == ("user", user.pk)
    assert row.hash == chain_hash(row)
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_a_wallet_short_of_the_amount_is_refused_and_nothing_is_written(user, funded_wallet):
    wallet = funded_wallet(300)
    before = money_state()
    payments = Payment.objects.count()

    with pytest.raises(InsufficientFunds) as refused:
        _pay(user, wallet, amount=301)

    assert (refused.value.param, refused.value.message) == ("amount", InsufficientFunds.default_message)
    assert money_state() == before
    assert Payment.objects.count() == payments


def test_a_frozen_wallet_is_refused_and_nothing_is_written(user, funded_wallet):
    wallet = funded_wallet(300)
    Wallet.objects.filter(pk=wallet.pk).update(status=Wallet.Status.FROZEN)
    before = money_state()

    with pytest.raises(WalletInactive) as refused:
        _pay(user, wallet, amount=100)

    assert (refused.value.param, refused.value.message) == (
        "payment_method",
        f"Wallet {wallet.pk} is frozen.",
    )
    assert money_state() == before


def test_the_api_answers_a_short_wallet_in_the_error_envelope(auth_client, funded_wallet):
    wallet = funded_wallet(100)

    response = auth_client.post(
        "/api/v1/payments",
        {"amount": 500, "currency": "USD", "payment_method": f"wallet:{wallet.pk}"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="wallet-short-1",
    )

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "insufficient_funds"
    assert response.json()["error"]["param"] == "amount"
    wallet.refresh_from_db()
    assert wallet.balance == 100
