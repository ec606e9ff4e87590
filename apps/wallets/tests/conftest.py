import pytest
from rest_framework.test import APIClient

from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, Posting
from apps.wallets.models import Transaction, Wallet
from apps.wallets.tests.factories import UserFactory


def money_state() -> dict:
    """Everything a money movement could have changed; equal before and after = nothing moved."""
    return {
        "balances": dict(Wallet.objects.values_list("pk", "balance")),
        "entries": JournalEntry.objects.count(),
        "postings": Posting.objects.count(),
        "transactions": list(Transaction.objects.order_by("pk").values_list("pk", "status")),
        "events": OutboxEvent.objects.count(),
        "audit": AuditLog.objects.count(),
    }


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def client_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return make
