import pytest

from apps.wallets.models import Wallet
from apps.wallets.services import wallet_transfer
from apps.wallets.tests.factories import UserFactory, WalletFactory, fund


@pytest.mark.django_db
@pytest.mark.parametrize("currency", ["usd", "USD", "Eur", "jpy"])
def test_a_wallet_is_opened_in_any_case_of_currency_and_returned_upper_case(user, client_for, currency):
    response = client_for(user).post("/api/v1/wallets", {"currency": currency}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("wal_")
    assert (body["currency"], body["balance"], body["status"]) == (currency.upper(), 0, "active")
    assert "created_at" in body
    wallet = Wallet.objects.get(pk=body["id"])
    assert (wallet.user, wallet.ledger_account.currency) == (user, currency.upper())


@pytest.mark.django_db
@pytest.mark.parametrize("currency", ["US", "XXX", "USDD", "", 840, None, True])
def test_a_wallet_in_a_currency_that_is_not_iso_4217_is_refused(user, client_for, currency):
    response = client_for(user).post("/api/v1/wallets", {"currency": currency}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "currency"
    assert not Wallet.objects.exists()


@pytest.mark.django_db
def test_a_wallet_without_currency_is_refused_as_missing(user, client_for):
    response = client_for(user).post("/api/v1/wallets", {}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_missing"


@pytest.mark.django_db
def test_a_second_wallet_in_the_same_currency_is_a_409(user, client_for):
    client = client_for(user)
    client.post("/api/v1/wallets", {"currency": "USD"}, format="json")

    response = client.post("/api/v1/wallets", {"currency": "usd"}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["type"] == "conflict_error"
    assert response.json()["error"]["code"] == "wallet_exists"
    assert Wallet.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_a_user_lists_only_their_own_wallets_newest_first(user, client_for):
    client = client_for(user)
    ids = [
        client.post("/api/v1/wallets", {"currency": c}, format="json").json()["id"] for c in ("USD", "EUR")
    ]
    WalletFactory()  # someone else's

    response = client.get("/api/v1/wallets")

    assert response.status_code == 200
    assert [w["id"] for w in response.json()["data"]] == ids[::-1]
    assert response.json()["next_cursor"] is None


@pytest.mark.django_db
def test_another_users_wallet_is_a_404_exactly_like_a_missing_one(user, client_for):
    theirs = WalletFactory()
    client = client_for(user)

    for path in (f"/api/v1/wallets/{theirs.pk}", "/api/v1/wallets/wal_01JD0000000000000000000000"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"
        assert theirs.currency not in response.content.decode()


@pytest.mark.django_db
def test_wallets_need_authentication(api_client):
    assert api_client.get("/api/v1/wallets").status_code == 401
    assert api_client.post("/api/v1/wallets", {"currency": "USD"}, format="json").status_code == 401


@pytest.mark.django_db
def test_a_read_wallet_shows_its_new_balance_right_after_a_transfer(
    client_for, django_capture_on_commit_callbacks
):
    source, destination = WalletFactory(), WalletFactory()
    with django_capture_on_commit_callbacks(execute=True):
        fund(source, 500)
    client = client_for(source.user)
    assert client.get(f"/api/v1/wallets/{source.pk}").json()["balance"] == 500  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        wallet_transfer(
            actor=None,
            user=source.user,
            source_wallet_id=source.pk,
            destination_wallet_id=destination.pk,
            amount=120,
        )

    assert client.get(f"/api/v1/wallets/{source.pk}").json()["balance"] == 380
    assert client.get("/api/v1/wallets").json()["data"][0]["balance"] == 380
    assert client_for(destination.user).get(f"/api/v1/wallets/{destination.pk}").json()["balance"] == 120


@pytest.mark.django_db
def test_a_cached_wallet_read_costs_no_query(client_for, django_assert_num_queries):
    wallet = WalletFactory()
    client = client_for(wallet.user)
    client.get(f"/api/v1/wallets/{wallet.pk}")

    with django_assert_num_queries(0):
        response = client.get(f"/api/v1/wallets/{wallet.pk}")

    assert response.json()["id"] == wallet.pk


@pytest.mark.django_db
def test_staff_see_only_their_own_wallets_through_the_api(client_for):
    theirs = WalletFactory()
    staff = UserFactory(is_staff=True)

    assert client_for(staff).get(f"/api/v1/wallets/{theirs.pk}").status_code == 404
