import pytest

from apps.gateways.models import SimulatedCharge
from apps.ledger.models import LedgerAccount
from apps.ledger.selectors import ledger_account_balance
from apps.wallets.models import Transaction
from apps.wallets.services import wallet_freeze
from apps.wallets.tests.conftest import money_state
from apps.wallets.tests.factories import UserFactory, WalletFactory


@pytest.fixture
def wallet():
    return WalletFactory(currency="USD")


def _deposit(client_for, wallet, body, user=None):
    return client_for(user or wallet.user).post(f"/api/v1/wallets/{wallet.pk}/deposits", body, format="json")


# Committed for real: a transient error is retried by the worker (eager in tests) once the
# deposit's retry is committed.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("token", ["tok_visa", "tok_mastercard", "tok_transientError", "tok_responseLost"])
def test_a_charged_deposit_completes_and_credits_the_wallet_from_gateway_clearing(client_for, wallet, token):
    response = _deposit(client_for, wallet, {"amount": 2_500, "payment_method": token})

    assert response.status_code == 201
    body = response.json()
    assert (body["type"], body["status"], body["amount"], body["currency"]) == (
        "deposit",
        "completed",
        2_500,
        "USD",
    )
    assert (body["failure_code"], body["source_wallet"], body["destination_wallet"]) == (
        None,
        None,
        wallet.pk,
    )
    wallet.refresh_from_db()
    assert wallet.balance == 2_500
    clearing = LedgerAccount.objects.get(code="gateway_clearing", currency="USD")
    assert ledger_account_balance(account=clearing) == -2_500
    assert ledger_account_balance(account=wallet.ledger_account) == 2_500
    assert SimulatedCharge.objects.get(idempotency_key=body["id"]).amount == 2_500


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("token", "failure_code"),
    [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("tok_riskLevelElevated", "card_review_required"),
    ],
)
def test_a_declined_deposit_is_a_201_failed_transaction_that_moves_nothing(
    client_for, wallet, token, failure_code
):
    response = _deposit(client_for, wallet, {"amount": 2_500, "payment_method": token})

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["failure_code"]) == ("failed", failure_code)
    assert body["failure_message"]
    wallet.refresh_from_db()
    assert wallet.balance == 0
    assert ledger_account_balance(account=wallet.ledger_account) == 0
    assert Transaction.objects.get(pk=body["id"]).journal_entry is None


@pytest.mark.django_db
def test_a_card_held_for_review_is_released_not_left_authorized(client_for, wallet):
    body = _deposit(client_for, wallet, {"amount": 900, "payment_method": "tok_riskLevelElevated"}).json()

    assert SimulatedCharge.objects.get(idempotency_key=body["id"]).status == SimulatedCharge.Status.VOIDED


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [0, -1, 10.5, "10", 1e30, None, True], ids=repr)
def test_a_deposit_with_a_bad_amount_is_refused_before_anything_is_charged(client_for, wallet, amount):
    before = money_state()

    response = _deposit(client_for, wallet, {"amount": amount, "payment_method": "tok_visa"})

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "parameter_invalid",
        "amount",
    )
    assert money_state() == before
    assert not SimulatedCharge.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["amount", "payment_method"])
def test_a_deposit_missing_a_field_is_refused(client_for, wallet, missing):
    body = {"amount": 100, "payment_method": "tok_visa"}
    del body[missing]

    response = _deposit(client_for, wallet, body)

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "parameter_missing",
        missing,
    )
    assert not Transaction.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "number", ["4242424242424242", "4242 4242 4242 4242", "4000-0566-5566-5556", "378282246310005"]
)
def test_a_raw_card_number_is_refused_and_never_echoed(client_for, wallet, number):
    before = money_state()

    response = _deposit(client_for, wallet, {"amount": 100, "payment_method": number})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "raw_card_data_rejected"
    assert response.json()["error"]["param"] == "payment_method"
    assert number not in response.content.decode()
    assert money_state() == before
    assert not SimulatedCharge.objects.exists()


@pytest.mark.django_db
def test_a_deposit_into_a_frozen_wallet_is_refused(client_for, wallet):
    wallet_freeze(
        actor=UserFactory(is_staff=True, is_superuser=True), wallet_id=wallet.pk, note="court order"
    )
    before = money_state()

    response = _deposit(client_for, wallet, {"amount": 100, "payment_method": "tok_visa"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "wallet_inactive"
    assert money_state() == before
    assert not SimulatedCharge.objects.exists()


@pytest.mark.django_db
def test_a_deposit_in_another_currency_than_the_wallets_is_refused(client_for, wallet):
    response = _deposit(client_for, wallet, {"amount": 100, "payment_method": "tok_visa", "currency": "eur"})

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "currency_mismatch",
        "currency",
    )
    assert not Transaction.objects.exists()


@pytest.mark.django_db
def test_a_deposit_into_another_users_wallet_is_a_404(client_for, wallet):
    response = _deposit(client_for, wallet, {"amount": 100, "payment_method": "tok_visa"}, user=UserFactory())

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
    assert not Transaction.objects.exists()


@pytest.mark.django_db
def test_a_retried_deposit_with_the_same_idempotency_key_charges_once(client_for, wallet):
    client = client_for(wallet.user)
    body = {"amount": 700, "payment_method": "tok_visa"}

    first = client.post(
        f"/api/v1/wallets/{wallet.pk}/deposits", body, format="json", HTTP_IDEMPOTENCY_KEY="d-1"
    )
    again = client.post(
        f"/api/v1/wallets/{wallet.pk}/deposits", body, format="json", HTTP_IDEMPOTENCY_KEY="d-1"
    )

    assert again.json()["id"] == first.json()["id"]
    assert SimulatedCharge.objects.count() == 1
    wallet.refresh_from_db()
    assert wallet.balance == 700
