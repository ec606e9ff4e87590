"""The outbox payload of a wallet transaction: one shape for transfers and deposits."""

from __future__ import annotations

from typing import Any

from apps.wallets.models import Transaction


def transaction_payload(txn: Transaction) -> dict[str, Any]:
    return {
        "transaction": txn.pk,
        "type": txn.type,
        "status": txn.status,
        "amount": txn.amount,
        "currency": txn.currency,
        "source_wallet": txn.source_wallet_id,
        "destination_wallet": txn.destination_wallet_id,
        "failure_code": txn.failure_code,
    }
