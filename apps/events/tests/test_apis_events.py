"""GET /events and GET /events/{id}: each principal's own events, the resource as this API returns
it, the request behind it, filters, and the 30-day retention."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.events.models import Event, WebhookDelivery
from apps.events.services import events_purge
from apps.wallets.services import wallet_create
from apps.wallets.tests.factories import fund

pytestmark = pytest.mark.django_db(transaction=True)


def pay(client, key=None, correlation="", **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    if correlation:
        headers["HTTP_X_CORRELATION_ID"] = correlation
    response = client.post(
        "/api/v1/payments",
        {"amount": 2_000, "currency": "usd", "payment_method": "tok_visa", **body},
        format="json",
        **headers,
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_a_payment_is_two_events_carrying_the_payment_as_the_api_returns_it(auth_client):
    payment = pay(auth_client, key="order-42", correlation="trace-42", description="two mugs")

    events = auth_client.get("/api/v1/events").json()["data"]

    assert [e["type"] for e in events] == ["payment.succeeded", "payment.created"]
    succeeded, created = events
    assert succeeded["object"] == "event"
    assert succeeded["id"].startswith("evt_")
    assert succeeded["data"]["object"] == auth_client.get(f"/api/v1/payments/{payment['id']}").json()
    assert created["data"]["object"]["status"] == "pending"  # its state as of the event
    assert created["data"]["object"]["amount_captured"] == 0
    for event in events:
        assert event["request"] == {"correlation_id": "trace-42", "idempotency_key": "order-42"}
    one = auth_client.get(f"/api/v1/events/{succeeded['id']}")
    assert one.status_code == 200
    assert one.json() == succeeded


def test_a_request_without_a_key_has_a_null_idempotency_key(auth_client):
    pay(auth_client, correlation="no-key-here")

    events = auth_client.get("/api/v1/events").json()["data"]

    assert {tuple(e["request"].values()) for e in events} == {("no-key-here", None)}


def test_a_reused_correlation_id_finds_the_key_of_the_callers_own_latest_request(
    auth_client, client_for, other_user
):
    pay(client_for(other_user), key="theirs", correlation="shared")
    pay(auth_client, key="first", correlation="shared")
    pay(auth_client, key="second", correlation="shared")

    events = auth_client.get("/api/v1/events?type=payment.succeeded").json()["data"]

    assert [e["request"]["idempotency_key"] for e in events] == ["second", "first"]


def test_a_transfer_is_an_event_for_each_party_and_only_the_sender_sees_the_request(
    auth_client, client_for, user, other_user
):
    source = wallet_create(actor=user, user=user, currency="USD")
    destination = wallet_create(actor=other_user, user=other_user, currency="USD")
    fund(source, 5_000)
    response = auth_client.post(
        "/api/v1/transfers",
        {"source_wallet": source.pk, "destination_wallet": destination.pk, "amount": 1_250},
        format="json",
        HTTP_IDEMPOTENCY_KEY="rent-june",
        HTTP_X_CORRELATION_ID="trace-rent",
    )
    assert response.status_code == 201, response.content
    txn = response.json()

    mine = auth_client.get("/api/v1/events?type=transaction.completed").json()["data"]
    theirs = client_for(other_user).get("/api/v1/events?type=transaction.completed").json()["data"]

    assert [e["data"]["object"] for e in theirs] == [txn]
    assert mine[0]["data"]["object"] == txn  # (mine also holds the funding deposit's)
    assert mine[0]["id"] != theirs[0]["id"]
    assert mine[0]["request"] == {"correlation_id": "trace-rent", "idempotency_key": "rent-june"}
    assert theirs[0]["request"] == {"correlation_id": None, "idempotency_key": None}
    assert client_for(other_user).get(f"/api/v1/events/{mine[0]['id']}").status_code == 404


def test_another_principals_event_is_a_404(auth_client, client_for, other_user):
    theirs = pay(client_for(other_user))
    event = Event.objects.filter(data__object__id=theirs["id"]).first()

    response = auth_client.get(f"/api/v1/events/{event.pk}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"
    assert auth_client.get("/api/v1/events").json()["data"] == []
    assert auth_client.get("/api/v1/events/evt_nothing").status_code == 404


def test_events_filter_by_type_and_time_and_page_newest_first(auth_client, user):
    for _ in range(3):
        pay(auth_client)
    all_events = auth_client.get("/api/v1/events?limit=100").json()["data"]
    assert len(all_events) == 6
    old = Event.objects.filter(user=user).order_by("created_at").first()
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    cut = (timezone.now() - timedelta(days=1)).isoformat()

    succeeded = auth_client.get("/api/v1/events?type=payment.succeeded").json()["data"]
    recent = auth_client.get("/api/v1/events", {"created_gte": cut}).json()["data"]
    older = auth_client.get("/api/v1/events", {"created_lt": cut}).json()["data"]
    first = auth_client.get("/api/v1/events?limit=4").json()
    rest = auth_client.get(f"/api/v1/events?limit=4&cursor={first['next_cursor']}").json()

    assert [e["type"] for e in succeeded] == ["payment.succeeded"] * 3
    assert [e["id"] for e in older] == [old.pk]
    assert len(recent) == 5
    assert old.pk not in {e["id"] for e in recent}
    assert [e["id"] for e in first["data"] + rest["data"]] == [e["id"] for e in recent] + [old.pk]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("type=payment.exploded", "type"),
        ("created_gte=yesterday", "created_gte"),
        ("created_lt=2026-13-01", "created_lt"),
        ("limit=0", "limit"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(auth_client, query, param):
    response = auth_client.get(f"/api/v1/events?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_events_are_kept_30_days_then_purged_with_their_deliveries(auth_client, user, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    auth_client.post(
        "/api/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/h", "enabled_events": ["*"]}, format="json"
    )
    pay(auth_client)
    events = list(Event.objects.filter(user=user).order_by("created_at"))
    assert WebhookDelivery.objects.count() == 2
    Event.objects.filter(pk=events[0].pk).update(created_at=timezone.now() - timedelta(days=30, minutes=1))
    Event.objects.filter(pk=events[1].pk).update(created_at=timezone.now() - timedelta(days=29, hours=23))

    assert events_purge(dry_run=True) == 1
    assert Event.objects.count() == 2
    assert events_purge() == 1

    assert list(Event.objects.values_list("pk", flat=True)) == [events[1].pk]
    assert list(WebhookDelivery.objects.values_list("event_id", flat=True)) == [events[1].pk]
    settings.EVENTS_RETENTION_DAYS = 7  # never below 30 days
    assert events_purge() == 0


def test_the_api_keys_principal_sees_its_users_events(api_key_client, auth_client):
    pay(api_key_client, key=str(uuid.uuid4()))

    via_key = api_key_client.get("/api/v1/events").json()["data"]

    assert len(via_key) == 2
    assert via_key == auth_client.get("/api/v1/events").json()["data"]
    assert via_key[0]["request"]["idempotency_key"] is not None


def test_wallet_and_subscription_events_carry_their_objects_without_a_payment_token(auth_client):
    wallet = auth_client.post("/api/v1/wallets", {"currency": "EUR"}, format="json").json()
    subscription = auth_client.post(
        "/api/v1/subscriptions",
        {
            "plan_id": "pro",
            "amount": 1_500,
            "currency": "EUR",
            "billing_cycle": "monthly",
            "payment_method": "tok_visa",
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
    ).json()

    [opened] = auth_client.get("/api/v1/events?type=wallet.created").json()["data"]
    [created] = auth_client.get("/api/v1/events?type=subscription.created").json()["data"]

    assert opened["data"]["object"] == wallet
    assert created["data"]["object"]["id"] == subscription["id"]
    assert created["data"]["object"]["payment_method"] is None  # never a token in an event
    assert "tok_visa" not in str(Event.objects.get(pk=created["id"]).data)
    stable = ("id", "object", "plan_id", "amount", "currency", "billing_cycle", "metadata", "created_at")
    assert {k: created["data"]["object"][k] for k in stable} == {k: subscription[k] for k in stable}
