import pytest
from rest_framework.test import APIClient

from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, Posting
from apps.payouts.models import Payout
from apps.wallets.models import Wallet
from apps.wallets.tests.factories import UserFactory, WalletFactory, fund


def money_state() -> dict:
    """Everything a payout could have changed; equal before and after = nothing written."""
    return {
        "balances": dict(Wallet.objects.values_list("pk", "balance")),
        "entries": JournalEntry.objects.count(),
        "postings": Posting.objects.count(),
        "payouts": list(Payout.objects.order_by("pk").values_list("pk", "status")),
        "events": OutboxEvent.objects.count(),
        "audit": AuditLog.objects.count(),
    }


@pytest.fixture
def wallet():
    wallet = WalletFactory()
    fund(wallet, 10_000)
    return wallet


@pytest.fixture
def owner_client(wallet):
    client = APIClient()
    client.force_authenticate(user=wallet.user)
    return client


@pytest.fixture
def other_client():
    client = APIClient()
    client.force_authenticate(user=UserFactory())
    return client


@pytest.fixture
def reviewer(staff_reviewer):
    """Staff in the reviewer group (the review permission), as the root conftest makes them."""
    return staff_reviewer


def create(client, wallet, *, amount=2_500, destination="btok_success", key="k1", **extra):
    body = {"amount": amount, "destination": destination, **extra}
    return client.post(f"/api/v1/wallets/{wallet.pk}/payouts", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
