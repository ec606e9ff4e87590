from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.gateways.models import GatewayAttempt, SimulatedPayout
from apps.ledger.models import LedgerAccount
from apps.ledger.selectors import ledger_system_account_balances
from apps.payouts.models import Payout
from apps.payouts.services import payouts_sweep
from apps.payouts.tests.conftest import create, money_state
from apps.wallets.models import Wallet

BAD_AMOUNTS = [0, -1, 10.5, "10", 1e30, None, True, 100_000_000_000]


def _balance(client, wallet) -> int:
    """The balance the owner reads (tests without commits: the row; the cache is bumped on commit)."""
    wallet.refresh_from_db()
    return wallet.balance


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
    assert (body["description"], body["review"]) == ("rent", None)
    shown = owner_client.get(f"/api/v1/payouts/{body['id']}").json()
    assert shown["status"] == "paid"
    assert owner_client.get(f"/api/v1/wallets/{wallet.pk}").json()["balance"] == 7_500
    # The money went on from in transit to the gateway's clearing account, once.
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}
    clearing = LedgerAccount.objects.get(code="gateway_clearing", currency="USD")
    assert clearing.postings.order_by("-id").first().amount == 2_500
    assert SimulatedPayout.objects.get().idempotency_key == body["id"]
    assert GatewayAttempt.objects.filter(subject_id=body["id"], operation="payout").count() == 1
    call_command("verify_ledger")


@pytest.mark.django_db(transaction=True)
def test_a_payout_to_a_closed_account_fails_and_the_amount_comes_back(owner_client, wallet):
    response = create(owner_client, wallet, amount=4_000, destination="btok_accountClosed")

    assert response.status_code == 201
    assert response.json()["destination"] == {"type": "bank_account", "last4": "1116"}
    shown = owner_client.get(f"/api/v1/payouts/{response.json()['id']}").json()
    assert (shown["status"], shown["failure_code"]) == ("failed", "account_closed")
    assert _balance(owner_client, wallet) == 10_000
    # Reversed by a new entry, never by deleting the first: payout out, reversal in.
    payout = Payout.objects.get()
    account = wallet.ledger_account
    assert list(account.postings.order_by("id").values_list("amount", flat=True))[-2:] == [-4_000, 4_000]
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}
    assert payout.gateway_reference.startswith("sim_po_")
    call_command("verify_ledger")


@pytest.mark.django_db
def test_a_pending_payout_can_be_canceled_by_its_owner_and_the_money_comes_back(owner_client, wallet):
    payout_id = create(owner_client, wallet, amount=3_000).json()["id"]  # the worker runs on commit only
    assert _balance(owner_client, wallet) == 7_000

    response = owner_client.post(f"/api/v1/payouts/{payout_id}/cancel", {}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert _balance(owner_client, wallet) == 10_000
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}
    before = money_state()
    again = owner_client.post(f"/api/v1/payouts/{payout_id}/cancel", {}, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "payout_unexpected_state")
    assert money_state() == before
    assert not SimulatedPayout.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_paid_payout_cannot_be_canceled(owner_client, wallet):
    payout_id = create(owner_client, wallet).json()["id"]
    before = money_state()

    response = owner_client.post(f"/api/v1/payouts/{payout_id}/cancel", {}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "payout_unexpected_state")
    assert money_state() == before


@pytest.mark.django_db(transaction=True)
def test_a_retried_payout_with_the_same_idempotency_key_pays_once(owner_client, wallet):
    first = create(owner_client, wallet, amount=1_000, key="same")
    again = create(owner_client, wallet, amount=1_000, key="same")

    assert (again.status_code, again["Idempotent-Replayed"]) == (201, "true")
    assert again.json() == first.json()
    assert Payout.objects.count() == SimulatedPayout.objects.count() == 1
    assert _balance(owner_client, wallet) == 9_000
    reused = create(owner_client, wallet, amount=2_000, key="same")
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "idempotency_key_reused")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "status", "code", "param"),
    [
        ({"amount": 10_001}, 400, "insufficient_funds", "amount"),
        ({"destination": "btok_unknown"}, 400, "destination_invalid", "destination"),
        ({"destination": "4242 4242 4242 4242"}, 400, "raw_card_data_rejected", "destination"),
        ({"description": "card 4000-0566-5566-5556"}, 400, "raw_card_data_rejected", "description"),
        ({"currency": "EUR"}, 400, "parameter_unknown", "currency"),
        ({"destination": None}, 400, "parameter_invalid", "destination"),
    ],
)
def test_a_refused_payout_writes_nothing(owner_client, wallet, change, status, code, param):
    before = money_state()

    response = create(owner_client, wallet, **change)

    error = response.json()["error"]
    assert (response.status_code, error["code"], error.get("param")) == (status, code, param)
    assert "4242 4242" not in response.content.decode()
    assert money_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_an_amount_that_is_not_a_positive_integer_in_range_is_refused(owner_client, wallet, amount):
    before = money_state()

    response = create(owner_client, wallet, amount=amount)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "amount"
    assert money_state() == before


@pytest.mark.django_db
def test_a_payout_from_a_frozen_wallet_is_refused(owner_client, wallet):
    Wallet.objects.filter(pk=wallet.pk).update(status=Wallet.Status.FROZEN)  # as staff do in the admin
    before = money_state()

    response = create(owner_client, wallet)

    assert (response.status_code, response.json()["error"]["code"]) == (400, "wallet_inactive")
    assert money_state() == before


@pytest.mark.django_db
def test_a_payout_needs_an_idempotency_key(owner_client, wallet):
    before = money_state()

    response = owner_client.post(
        f"/api/v1/wallets/{wallet.pk}/payouts", {"amount": 100, "destination": "btok_success"}, format="json"
    )

    assert response.status_code == 400
    assert money_state() == before


@pytest.mark.django_db
def test_another_users_wallet_and_payouts_are_404(owner_client, other_client, wallet):
    payout_id = create(owner_client, wallet).json()["id"]
    before = money_state()

    assert create(other_client, wallet, key="theirs").status_code == 404
    assert other_client.get(f"/api/v1/wallets/{wallet.pk}/payouts").status_code == 404
    assert other_client.get(f"/api/v1/payouts/{payout_id}").status_code == 404
    assert other_client.post(f"/api/v1/payouts/{payout_id}/cancel", {}, format="json").status_code == 404
    assert other_client.get("/api/v1/payouts/po_NOPE").status_code == 404
    assert money_state() == before


@pytest.mark.django_db
def test_a_wallets_payouts_are_listed_newest_first_with_a_cursor(owner_client, wallet):
    ids = [create(owner_client, wallet, amount=100, key=f"k{n}").json()["id"] for n in range(3)]

    first = owner_client.get(f"/api/v1/wallets/{wallet.pk}/payouts?limit=2").json()
    second = owner_client.get(
        f"/api/v1/wallets/{wallet.pk}/payouts?limit=2&cursor={first['next_cursor']}"
    ).json()

    assert [p["id"] for p in first["data"] + second["data"]] == ids[::-1]
    assert second["next_cursor"] is None


@pytest.mark.django_db
def test_the_sweep_sends_a_payout_whose_task_was_lost(owner_client, wallet, settings):
    # Created without its on-commit hand-over (as if the broker lost the task).
    payout_id = create(owner_client, wallet, amount=1_500).json()["id"]
    assert payouts_sweep() == 0  # not stuck yet

    sent = payouts_sweep(now=timezone.now() + timedelta(seconds=settings.PAYOUT_STUCK_AFTER_SECONDS + 1))

    assert sent == 1
    assert Payout.objects.get(pk=payout_id).status == "paid"
    assert _balance(owner_client, wallet) == 8_500
