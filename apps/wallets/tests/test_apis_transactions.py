import pytest

from apps.wallets.services import wallet_transfer
from apps.wallets.tests.factories import WalletFactory, fund


def _transfer(source, destination, amount):
    return wallet_transfer(
        actor=None,
        user=source.user,
        source_wallet_id=source.pk,
        destination_wallet_id=destination.pk,
        amount=amount,
    )


@pytest.fixture
def history():
    """A wallet with one deposit, two transfers out and one in: 4 transactions, oldest first."""
    wallet, other = WalletFactory(), WalletFactory()
    fund(other, 100)
    txns = [
        fund(wallet, 1_000),
        _transfer(wallet, other, 10),
        _transfer(other, wallet, 5),
        _transfer(wallet, other, 1),
    ]
    return wallet, txns


@pytest.mark.django_db
def test_a_wallets_history_lists_deposits_and_transfers_both_ways_newest_first(client_for, history):
    wallet, txns = history

    response = client_for(wallet.user).get(f"/api/v1/wallets/{wallet.pk}/transactions")

    assert response.status_code == 200
    data = response.json()["data"]
    assert [t["id"] for t in data] == [t.pk for t in reversed(txns)]
    assert [t["type"] for t in data] == ["transfer", "transfer", "transfer", "deposit"]
    assert data[-1]["source_wallet"] is None
    assert response.json()["next_cursor"] is None


@pytest.mark.django_db
def test_pages_follow_each_other_without_gaps_or_repeats_while_new_rows_arrive(client_for, history):
    wallet, txns = history
    client = client_for(wallet.user)
    url = f"/api/v1/wallets/{wallet.pk}/transactions"

    first = client.get(url, {"limit": 2}).json()
    newer = fund(wallet, 7)  # inserted while the client pages: must not shift what follows
    second = client.get(url, {"limit": 2, "cursor": first["next_cursor"]}).json()

    assert [t["id"] for t in first["data"]] == [txns[3].pk, txns[2].pk]
    assert [t["id"] for t in second["data"]] == [txns[1].pk, txns[0].pk]
    assert second["next_cursor"] is None
    assert client.get(url, {"limit": 1}).json()["data"][0]["id"] == newer.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "W10"}, "cursor"),
        ({"cursor": "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgInR4biJd"}, "cursor"),  # naive datetime
    ],
)
def test_an_invalid_limit_or_cursor_is_a_400(client_for, history, params, param):
    wallet, _ = history

    response = client_for(wallet.user).get(f"/api/v1/wallets/{wallet.pk}/transactions", params)

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
        "parameter_invalid",
        param,
    )


@pytest.mark.django_db
def test_limit_bounds_are_accepted(client_for, history):
    wallet, _ = history
    client = client_for(wallet.user)

    assert len(client.get(f"/api/v1/wallets/{wallet.pk}/transactions", {"limit": 1}).json()["data"]) == 1
    assert len(client.get(f"/api/v1/wallets/{wallet.pk}/transactions", {"limit": 100}).json()["data"]) == 4


@pytest.mark.django_db
def test_another_users_history_is_a_404(client_for, history):
    wallet, _ = history
    stranger = WalletFactory()

    response = client_for(stranger.user).get(f"/api/v1/wallets/{wallet.pk}/transactions")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
