import pytest

from apps.wallets.models import Transaction
from apps.wallets.services import wallet_freeze
from apps.wallets.tests.conftest import money_state
from apps.wallets.tests.factories import UserFactory, WalletFactory, fund

BAD_AMOUNTS = [0, -1, 10.5, "10", 1e30, None, True, 100_000_000_000]


@pytest.fixture
def pair():
    source, destination = WalletFactory(), WalletFactory()
    fund(source, 1_000)
    return source, destination


def _post(client_for, source, body):
    return client_for(source.user).post("/api/v1/transfers", body, format="json")


@pytest.mark.django_db
def test_a_transfer_returns_the_completed_transaction(client_for, pair):
    source, destination = pair

    response = _post(
        client_for,
        source,
        {
            "source_wallet": source.pk,
            "destination_wallet": destination.pk,
            "amount": 250,
            "description": "lunch",
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("txn_")
    assert {k: body[k] for k in ("type", "status", "amount", "currency", "description")} == {
        "type": "transfer",
        "status": "completed",
        "amount": 250,
        "currency": "USD",
        "description": "lunch",
    }
    assert (body["source_wallet"], body["destination_wallet"]) == (source.pk, destination.pk)
    assert (body["failure_code"], body["failure_message"]) == (None, None)
    assert client_for(destination.user).get(f"/api/v1/wallets/{destination.pk}").json()["balance"] == 250


@pytest.mark.django_db
@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_an_amount_that_is_not_a_positive_integer_in_range_is_refused(client_for, pair, amount):
    source, destination = pair
    before = money_state()

    response = _post(
        client_for,
        source,
        {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": amount},
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "parameter_invalid",
        "amount",
    )
    assert money_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["amount", "source_wallet", "destination_wallet"])
def test_a_missing_field_is_refused(client_for, pair, missing):
    source, destination = pair
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 5}
    del body[missing]
    before = money_state()

    response = _post(client_for, source, body)

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "parameter_missing",
        missing,
    )
    assert money_state() == before


def _freeze(wallet):
    wallet_freeze(
        actor=UserFactory(is_staff=True, is_superuser=True), wallet_id=wallet.pk, note="investigation"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arrange", "amount", "status", "code", "param"),
    [
        (lambda s, d: (s, s), 10, 400, "same_wallet", "destination_wallet"),
        (lambda s, d: (s, WalletFactory(currency="EUR")), 10, 400, "currency_mismatch", "destination_wallet"),
        (lambda s, d: (_freeze(s), (s, d))[1], 10, 400, "wallet_inactive", "source_wallet"),
        (lambda s, d: (_freeze(d), (s, d))[1], 10, 400, "wallet_inactive", "destination_wallet"),
        (lambda s, d: (s, d), 1_001, 400, "insufficient_funds", "amount"),
        (lambda s, d: (WalletFactory(), d), 10, 404, "resource_missing", "source_wallet"),
    ],
    ids=[
        "same-wallet",
        "currency-mismatch",
        "frozen-source",
        "frozen-destination",
        "insufficient",
        "not-yours",
    ],
)
def test_a_refused_transfer_answers_its_error_and_moves_nothing(
    client_for, pair, arrange, amount, status, code, param
):
    source, destination = arrange(*pair)
    caller = pair[0]
    before = money_state()

    response = _post(
        client_for,
        caller,
        {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": amount},
    )

    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert money_state() == before


@pytest.mark.django_db
def test_a_retried_transfer_with_the_same_idempotency_key_moves_money_once(client_for, pair):
    source, destination = pair
    client = client_for(source.user)
    body = {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 100}

    first = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="rent-2026-11")
    again = client.post("/api/v1/transfers", body, format="json", HTTP_IDEMPOTENCY_KEY="rent-2026-11")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert client.get(f"/api/v1/wallets/{source.pk}").json()["balance"] == 900


@pytest.mark.django_db
@pytest.mark.parametrize("card", ["4242 4242 4242 4242", "4242.4242.4242.4242", "4242\t4242/4242-4242"])
def test_a_card_number_in_a_description_is_refused_and_nothing_is_stored(client_for, pair, card):
    # Issue 17: the guard runs where every JSON body is parsed, not only on payment bodies.
    source, destination = pair
    before = money_state()

    response = _post(
        client_for,
        source,
        {
            "source_wallet": source.pk,
            "destination_wallet": destination.pk,
            "amount": 5,
            "description": f"card {card}",
        },
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("raw_card_data_rejected", "description")
    assert "4242" * 2 not in response.content.decode()
    assert money_state() == before
    assert not Transaction.objects.filter(description__contains="4242").exists()
