"""What the deposit credit function (wallet_deposit_credit_v2) writes is what the rest of Paydesk reads back.

The function writes the entry, postings, balance, completed transaction, its events and its audit
row in SQL; these tests hold it to the Python definitions those rows are read with: the response
serializer, the event payload (`transaction_payload`), the audit chain's hash and the ledger's
own check; and to the rules of a credit: once, even into a frozen wallet.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction

from apps.audit.chain import chain_hash
from apps.audit.models import AuditLog
from apps.audit.services import audit_context
from apps.core.correlation import (
    reset_correlation_id,
    reset_request_meta,
    set_correlation_id,
    set_request_meta,
)
from apps.core.ids import new_pk
from apps.core.models import OutboxEvent
from apps.gateways.base import GatewayResult
from apps.ledger.models import JournalEntry, LedgerAccount, Posting, SystemAccount
from apps.wallets import engine
from apps.wallets.apis import TransactionOutputSerializer
from apps.wallets.models import Transaction, Wallet
from apps.wallets.payloads import transaction_payload
from apps.wallets.services import wallet_deposit_settle, wallet_deposit_start
from apps.wallets.tests.conftest import money_state
from apps.wallets.tests.factories import UserFactory, WalletFactory, fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_meta():
    correlation = set_correlation_id("corr-deposit-fn")
    meta = set_request_meta(ip="::ffff:192.0.2.7", user_agent='curl/8 "quoted" \U0001f4b8 zoë')
    yield
    reset_request_meta(meta)
    reset_correlation_id(correlation)


def _deposit(*, amount=1_250, currency="USD", frozen=False, prior=0):
    owner = UserFactory(email="zoë@exämple.test")
    wallet = WalletFactory(user=owner, currency=currency)
    if prior:
        fund(wallet, prior)
    pending = wallet_deposit_start(actor=owner, user=owner, wallet_id=wallet.pk, amount=amount)
    if frozen:
        Wallet.objects.filter(pk=wallet.pk).update(status=Wallet.Status.FROZEN)
    charged = GatewayResult(status="captured", reference="ch_fn_1", amount=amount, currency=currency)
    txn = wallet_deposit_settle(actor=owner, transaction_id=pending.pk, result=charged)
    return txn, wallet


def test_the_returned_deposit_is_the_row_the_function_wrote(request_meta):
    txn, wallet = _deposit(prior=400)

    stored = Transaction.objects.get(pk=txn.pk)
    assert TransactionOutputSerializer(txn).data == TransactionOutputSerializer(stored).data
    assert (stored.status, stored.gateway_reference, stored.payment_method_token) == (
        "completed",
        "ch_fn_1",
        "",
    )
    assert stored.next_attempt_at is None
    assert (stored.journal_entry_id, stored.updated_at) == (txn.journal_entry_id, txn.updated_at)
    wallet.refresh_from_db()
    assert wallet.balance == 400 + 1_250


def test_its_entry_moves_the_amount_from_gateway_clearing_to_the_wallet(request_meta):
    txn, wallet = _deposit()

    entry = JournalEntry.objects.get(pk=txn.journal_entry_id)
    assert (entry.kind, entry.memo, entry.correlation_id) == (
        "deposit",
        f"deposit {txn.pk}",
        "corr-deposit-fn",
    )
    clearing = LedgerAccount.objects.get(kind="system", code=SystemAccount.GATEWAY_CLEARING, currency="USD")
    assert sorted(
        Posting.objects.filter(entry=entry).values_list("account_id", "amount", "currency")
    ) == sorted([(clearing.pk, -1_250, "USD"), (wallet.ledger_account_id, 1_250, "USD")])


def test_the_first_deposit_in_a_currency_opens_its_clearing_account_once(request_meta):
    assert not LedgerAccount.objects.filter(code=SystemAccount.GATEWAY_CLEARING, currency="EUR").exists()

    first, _ = _deposit(currency="EUR")
    second_wallet = WalletFactory(currency="EUR")
    fund(second_wallet, 70)

    clearing = LedgerAccount.objects.get(kind="system", code=SystemAccount.GATEWAY_CLEARING, currency="EUR")
    assert Posting.objects.filter(account=clearing).count() == 2
    assert Posting.objects.get(entry_id=first.journal_entry_id, account=clearing).amount == -1_250


def test_its_events_carry_the_payloads_the_consumers_read(request_meta):
    txn, wallet = _deposit(prior=400)

    events = {e.event_type: e for e in OutboxEvent.objects.filter(payload__transaction=txn.pk)}
    assert set(events) == {"wallet.funds_added", "transaction.completed"}
    funds_added = events["wallet.funds_added"]
    assert funds_added.payload == {
        "wallet": wallet.pk,
        "transaction": txn.pk,
        "amount": 1_250,
        "currency": "USD",
        "balance": 1_650,
    }
    assert (funds_added.aggregate_type, funds_added.aggregate_id) == ("wallet", wallet.pk)
    completed = events["transaction.completed"]
    assert completed.payload == transaction_payload(Transaction.objects.get(pk=txn.pk))
    assert (completed.aggregate_type, completed.aggregate_id) == ("transaction", txn.pk)
    assert {e.correlation_id for e in events.values()} == {"corr-deposit-fn"}
    # written waiting for the relay (or the on-commit hand-off), as every event is
    assert all(e.published_at is None and e.publish_attempts == 0 for e in events.values())


def test_its_audit_row_hashes_as_the_chain_is_verified(request_meta):
    txn, wallet = _deposit(prior=400)

    row = AuditLog.objects.get(action="wallet.deposit.complete", entity_id=txn.pk)
    assert (row.actor_type, row.actor_id, row.actor_repr) == ("user", wallet.user_id, "zoë@exämple.test")
    assert (row.correlation_id, row.user_agent, str(row.ip)) == (
        "corr-deposit-fn",
        'curl/8 "quoted" \U0001f4b8 zoë',
        "::ffff:192.0.2.7",
    )
    assert row.before == {"status": "pending", "wallet_balance": 400}
    assert row.after == {
        "status": "completed",
        "wallet_balance": 1_650,
        "journal_entry": txn.journal_entry_id,
    }
    assert row.hash == chain_hash(row)
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()


def test_a_wallet_frozen_since_the_deposit_started_is_still_credited(request_meta):
    txn, wallet = _deposit(frozen=True)

    wallet.refresh_from_db()
    assert (txn.status, wallet.status, wallet.balance) == ("completed", "frozen", 1_250)


def test_the_function_refuses_to_credit_a_deposit_that_is_not_pending():
    wallet = WalletFactory()
    done = fund(wallet, 300)
    before = money_state()

    with pytest.raises(DatabaseError, match="is not a pending deposit"), transaction.atomic():
        engine.call(
            "SELECT * FROM wallet_deposit_credit_v2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                done.pk,
                "ch_again",
                new_pk(JournalEntry),
                new_pk(LedgerAccount),
                [new_pk(OutboxEvent), new_pk(OutboxEvent)],
                *engine.audit_args(audit_context(actor=None)),
            ],
        )

    assert money_state() == before
    wallet.refresh_from_db()
    assert wallet.balance == 300
