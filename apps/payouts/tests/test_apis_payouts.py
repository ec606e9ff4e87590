import pytest

from apps.ledger.models import LedgerAccount
from apps.ledger.selectors import ledger_system_account_balances
from apps.payouts.tests.conftest import create


@pytest.mark.django_db(transaction=True)
def test_a_payout_to_btok_success_leaves_the_wallet_and_is_paid_by_the_worker(owner_client, wallet):
    response = create(owner_client, wallet, amount=2_500, description="rent")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("po_")
    assert {
        k: body[k] for k in ("wallet", "amount", "currency", "destination", "status", "failure_code")
    } == {
        "wallet": wallet.pk,
        "amount": 2_500,
        "currency": "USD",
        "destination": {"type": "bank_account", "last4": "6789"},
        "status": "pending",
        "failure_code": None,
    }
    shown = owner_client.get(f"/api/v1/payouts/{body['id']}").json()
    assert shown["status"] == "paid"
    assert owner_client.get(f"/api/v1/wallets/{wallet.pk}").json()["balance"] == 7_500
    # The money went on from in transit to the gateway's clearing account.
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}
    clearing = LedgerAccount.objects.get(code="gateway_clearing", currency="USD")
    assert clearing.postings.order_by("-id").first().amount == 2_500
