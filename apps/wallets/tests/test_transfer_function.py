"""What the transfer functions (wallet_transfer_v2, the batch) write is what the rest of Paydesk reads back.

The function writes the transaction row, its events and its audit row in SQL; these tests hold it
to the Python definitions those rows are read with: the response serializer, the event payload
(`transaction_payload`), the audit chain's hash, and the ledger's own check.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.audit.chain import chain_hash
from apps.audit.models import AuditLog
from apps.core.correlation import (
    reset_correlation_id,
    reset_request_meta,
    set_correlation_id,
    set_request_meta,
)
from apps.core.models import OutboxEvent
from apps.wallets.apis import TransactionOutputSerializer
from apps.wallets.models import Transaction
from apps.wallets.payloads import transaction_payload
from apps.wallets.services import wallet_transfer
from apps.wallets.tests.factories import UserFactory, WalletFactory, fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_meta():
    correlation = set_correlation_id("corr-transfer-fn")
    meta = set_request_meta(ip="::ffff:192.0.2.7", user_agent='curl/8 "quoted" \U0001f4b8 zoë')
    yield
    reset_request_meta(meta)
    reset_correlation_id(correlation)


def _transfer(*, amount=250, description="for the kettle — £"):
    sender = UserFactory(email="zoë@exämple.test")
    source, destination = WalletFactory(user=sender), WalletFactory()
    fund(source, 1_000)
    txn = wallet_transfer(
        actor=sender,
        user=sender,
        source_wallet_id=source.pk,
        destination_wallet_id=destination.pk,
        amount=amount,
        description=description,
    )
    return txn, source, destination


def test_the_returned_transaction_is_the_row_the_function_wrote(request_meta):
    txn, source, destination = _transfer()

    stored = Transaction.objects.get(pk=txn.pk)
    assert TransactionOutputSerializer(txn).data == TransactionOutputSerializer(stored).data
    assert (stored.source_wallet_id, stored.destination_wallet_id) == (source.pk, destination.pk)
    assert stored.journal_entry_id == txn.journal_entry_id
    assert stored.journal_entry.correlation_id == "corr-transfer-fn"


def test_its_events_carry_the_payloads_the_consumers_read(request_meta):
    txn, source, destination = _transfer()

    events = {e.event_type: e for e in OutboxEvent.objects.filter(payload__transaction=txn.pk)}
    assert set(events) == {"wallet.funds_deducted", "wallet.funds_added", "transaction.completed"}
    common = {"transaction": txn.pk, "amount": 250, "currency": "USD"}
    assert events["wallet.funds_deducted"].payload == {**common, "wallet": source.pk, "balance": 750}
    assert events["wallet.funds_added"].payload == {**common, "wallet": destination.pk, "balance": 250}
    completed = events["transaction.completed"]
    assert completed.payload == transaction_payload(Transaction.objects.get(pk=txn.pk))
    assert (completed.aggregate_type, completed.aggregate_id) == ("transaction", txn.pk)
    assert {e.correlation_id for e in events.values()} == {"corr-transfer-fn"}
    # Written not yet handed over (the outbox trigger): whoever publishes them marks them.
    assert all(e.published_at is None and e.publish_attempts == 0 for e in events.values())


def test_its_audit_row_hashes_as_the_chain_is_verified(request_meta):
    txn, source, destination = _transfer()

    row = AuditLog.objects.get(action="wallet.transfer", entity_id=txn.pk)
    assert (row.actor_type, row.actor_id, row.actor_repr) == ("user", source.user.pk, "zoë@exämple.test")
    assert (row.correlation_id, row.user_agent) == ("corr-transfer-fn", 'curl/8 "quoted" \U0001f4b8 zoë')
    assert row.before == {"source_balance": 1_000, "destination_balance": 0}
    assert row.after == {
        "transaction": txn.pk,
        "amount": 250,
        "currency": "USD",
        "source_wallet": source.pk,
        "destination_wallet": destination.pk,
        "source_balance": 750,
        "destination_balance": 250,
        "journal_entry": txn.journal_entry_id,
    }
    assert row.hash == chain_hash(row)
    out = StringIO()
    call_command("verify_audit_chain", stdout=out)
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()
