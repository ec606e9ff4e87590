"""/api/v1/subscriptions as API.md fixes it: fields, owner scoping, errors in the envelope."""

import pytest

from apps.payments.models import Payment
from apps.subscriptions.models import Subscription

from .factories import events_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/subscriptions"
BODY = {
    "plan_id": "pro",
    "amount": 1500,
    "currency": "usd",
    "billing_cycle": "monthly",
    "payment_method": "tok_visa",
}
FIELDS = {
    "id",
    "object",
    "plan_id",
    "amount",
    "currency",
    "billing_cycle",
    "status",
    "payment_method",
    "current_period_start",
    "current_period_end",
    "next_billing_date",
    "trial_end_date",
    "cancel_at_period_end",
    "canceled_at",
    "metadata",
    "pending_update",
    "latest_payment",
    "created_at",
}


def create(client, **changes):
    response = client.post(URL, {**BODY, **changes}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def assert_error(response, status, code, param=None):
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def test_create_charges_the_first_period_and_answers_the_subscription(auth_client, user):
    body = create(auth_client, metadata={"seat_count": 3})

    assert set(body) == FIELDS
    assert body["id"].startswith("sub_")
    assert (body["status"], body["amount"], body["currency"], body["billing_cycle"]) == (
        "active",
        1500,
        "USD",
        "monthly",
    )
    assert body["payment_method"] == "tok_visa"
    assert body["current_period_end"] == body["next_billing_date"]
    assert body["current_period_start"].endswith("Z")
    assert body["trial_end_date"] is None
    assert body["metadata"] == {"seat_count": 3}
    payment = Payment.objects.get(subscription_id=body["id"])
    assert body["latest_payment"] == payment.pk
    assert payment.status == "succeeded"
    assert payment.owner_id == user.pk


def test_the_payment_method_is_encrypted_at_rest(auth_client):
    from django.db import connection

    body = create(auth_client)
    with connection.cursor() as cursor:
        cursor.execute("SELECT payment_method FROM subscriptions_subscription WHERE id = %s", [body["id"]])
        [stored] = cursor.fetchone()
    assert "tok_visa" not in stored
    assert stored.startswith("v2.")


def test_create_with_a_trial_charges_nothing_yet(auth_client):
    body = create(auth_client, trial_days=7)

    assert body["status"] == "trialing"
    assert body["trial_end_date"] == body["next_billing_date"] == body["current_period_end"]
    assert body["latest_payment"] is None
    assert not Payment.objects.filter(subscription_id=body["id"]).exists()


def test_a_declined_first_charge_leaves_it_past_due(auth_client):
    body = create(auth_client, payment_method="tok_chargeDeclined")
    assert body["status"] == "past_due"
    assert body["current_period_start"] is None
    assert Payment.objects.get(pk=body["latest_payment"]).failure_code == "card_declined"


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"billing_cycle": "fortnightly"}, "billing_cycle"),
        ({"trial_days": -1}, "trial_days"),
        ({"trial_days": 1.5}, "trial_days"),
        ({"amount": 0}, "amount"),
        ({"amount": "15"}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"plan_id": ""}, "plan_id"),
        ({"payment_method": "4242 4242 4242"}, "payment_method"),
    ],
)
def test_create_refuses_invalid_fields_and_creates_nothing(auth_client, changes, param):
    response = auth_client.post(URL, {**BODY, **changes}, format="json")
    error = assert_error(response, 400, response.json()["error"]["code"], param)
    assert error["type"] == "invalid_request_error"
    assert not Subscription.objects.exists()


def test_create_refuses_card_numbers(auth_client):
    response = auth_client.post(URL, {**BODY, "payment_method": "4242424242424242"}, format="json")
    assert_error(response, 400, "raw_card_data_rejected")
    assert not Subscription.objects.exists()


def test_create_refuses_a_missing_field(auth_client):
    body = {key: value for key, value in BODY.items() if key != "billing_cycle"}
    assert_error(auth_client.post(URL, body, format="json"), 400, "parameter_missing", "billing_cycle")


def test_create_refuses_another_users_wallet_and_a_wallet_in_another_currency(
    auth_client, client_for, other_user, user
):
    from apps.wallets.services import wallet_create

    theirs = wallet_create(actor=other_user, user=other_user, currency="USD")
    mine = wallet_create(actor=user, user=user, currency="EUR")

    response = auth_client.post(URL, {**BODY, "payment_method": f"wallet:{theirs.pk}"}, format="json")
    assert_error(response, 404, "resource_missing", "payment_method")
    response = auth_client.post(URL, {**BODY, "payment_method": f"wallet:{mine.pk}"}, format="json")
    assert_error(response, 400, "currency_mismatch", "payment_method")
    assert not Subscription.objects.exists()


def test_create_with_an_idempotency_key_makes_one_subscription_and_one_charge(auth_client):
    first = auth_client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="signup-42")
    again = auth_client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="signup-42")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Subscription.objects.count() == 1
    assert Payment.objects.count() == 1


def test_list_is_the_callers_own_newest_first_and_filters_by_status(auth_client, client_for, other_user):
    older = create(auth_client)
    newer = create(auth_client, trial_days=3)
    create(client_for(other_user))

    listed = auth_client.get(URL).json()
    assert [s["id"] for s in listed["data"]] == [newer["id"], older["id"]]
    assert listed["next_cursor"] is None
    trialing = auth_client.get(URL, {"status": "trialing"}).json()["data"]
    assert [s["id"] for s in trialing] == [newer["id"]]
    assert_error(auth_client.get(URL, {"status": "sleeping"}), 400, "parameter_invalid", "status")


def test_get_one(auth_client):
    body = create(auth_client)
    assert auth_client.get(f"{URL}/{body['id']}").json() == body


def test_another_users_subscription_is_a_404_for_every_method(auth_client, client_for, other_user):
    theirs = create(client_for(other_user))
    url = f"{URL}/{theirs['id']}"

    for response in (
        auth_client.get(url),
        auth_client.patch(url, {"amount": 1}, format="json"),
        auth_client.delete(url),
        auth_client.delete(f"{url}?at_period_end=true"),
    ):
        error = assert_error(response, 404, "resource_missing")
        assert theirs["id"] in error["message"]
        assert "tok_visa" not in str(response.json())
    stored = Subscription.objects.get(pk=theirs["id"])
    assert (stored.status, stored.pending_amount) == ("active", None)
    assert_error(auth_client.get(f"{URL}/sub_nope"), 404, "resource_missing")


def test_patch_records_changes_for_the_next_period(auth_client):
    body = create(auth_client, metadata={"team": "a", "seats": 2})
    response = auth_client.patch(
        f"{URL}/{body['id']}",
        {"amount": 2500, "billing_cycle": "yearly", "plan_id": "team", "metadata": {"seats": 5, "team": ""}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    updated = response.json()
    assert (updated["amount"], updated["billing_cycle"], updated["plan_id"]) == (1500, "monthly", "pro")
    assert updated["pending_update"] == {"amount": 2500, "billing_cycle": "yearly", "plan_id": "team"}
    assert updated["metadata"] == {"seats": 5}
    assert events_of(body["id"])[-1] == "subscription.updated"


def test_patch_needs_something_to_change(auth_client):
    body = create(auth_client)
    assert_error(auth_client.patch(f"{URL}/{body['id']}", {}, format="json"), 400, "parameter_missing")
    response = auth_client.patch(f"{URL}/{body['id']}", {"billing_cycle": "hourly"}, format="json")
    assert_error(response, 400, "parameter_invalid", "billing_cycle")
    response = auth_client.patch(
        f"{URL}/{body['id']}", {"card": {"number": "4242424242424242"}}, format="json"
    )
    assert_error(response, 400, "raw_card_data_rejected")


def test_patch_of_a_canceled_subscription_is_a_409(auth_client):
    body = create(auth_client)
    auth_client.delete(f"{URL}/{body['id']}")

    response = auth_client.patch(f"{URL}/{body['id']}", {"amount": 2500}, format="json")

    error = assert_error(response, 409, "subscription_canceled")
    assert error["type"] == "conflict_error"
    assert Subscription.objects.get(pk=body["id"]).pending_amount is None


def test_delete_cancels_now(auth_client):
    body = create(auth_client)
    response = auth_client.delete(f"{URL}/{body['id']}")

    assert response.status_code == 200
    canceled = response.json()
    assert canceled["status"] == "canceled"
    assert canceled["canceled_at"] is not None
    assert canceled["next_billing_date"] is None
    assert auth_client.delete(f"{URL}/{body['id']}").json() == canceled
    assert_error(auth_client.delete(f"{URL}/{body['id']}?at_period_end=true"), 409, "subscription_canceled")


def test_delete_at_period_end_defers_the_cancellation(auth_client):
    body = create(auth_client)
    response = auth_client.delete(f"{URL}/{body['id']}?at_period_end=true")

    deferred = response.json()
    assert response.status_code == 200
    assert (deferred["status"], deferred["cancel_at_period_end"]) == ("active", True)
    assert deferred["canceled_at"] is None
    assert deferred["next_billing_date"] is None
    assert deferred["current_period_end"] == body["current_period_end"]
    response = auth_client.delete(f"{URL}/{body['id']}?at_period_end=maybe")
    assert_error(response, 400, "parameter_invalid", "at_period_end")


def test_every_call_needs_authentication(api_client):
    assert_error(api_client.get(URL), 401, "authentication_failed")
    assert_error(api_client.post(URL, BODY, format="json"), 401, "authentication_failed")
