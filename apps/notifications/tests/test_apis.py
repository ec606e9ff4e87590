"""GET /api/v1/notifications: a user's own email history, newest first, paginated, in the envelope."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import OutboxEvent
from apps.notifications.models import Notification

pytestmark = pytest.mark.django_db


def notification(user, *, template="welcome", status="sent", minutes_ago=0, **fields):
    event = OutboxEvent.objects.create(
        event_type="user.registered", aggregate_type="user", aggregate_id=user.pk
    )
    created = timezone.now() - timedelta(minutes=minutes_ago)
    return Notification.objects.create(
        user=user,
        event=event,
        template=template,
        to=user.email,
        subject=f"{template} subject",
        status=status,
        attempts=1,
        sent_at=created if status == "sent" else None,
        created_at=created,
        **fields,
    )


def test_a_user_sees_only_their_own_notifications_newest_first(auth_client, user, other_user):
    older = notification(user, template="welcome", minutes_ago=5)
    newer = notification(user, template="deposit_completed", minutes_ago=1)
    notification(other_user, template="welcome")

    response = auth_client.get("/api/v1/notifications")

    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["data"]] == [newer.pk, older.pk]
    assert body["next_cursor"] is None
    first = body["data"][0]
    assert first == {
        "id": newer.pk,
        "object": "notification",
        "event": newer.event_id,
        "template": "deposit_completed",
        "to": user.email,
        "subject": "deposit_completed subject",
        "status": "sent",
        "attempts": 1,
        "last_error": None,
        "created_at": first["created_at"],
        "sent_at": first["sent_at"],
    }
    assert first["sent_at"] is not None


def test_pages_follow_the_cursor_without_repeating(auth_client, user):
    ids = [notification(user, minutes_ago=minutes).pk for minutes in range(5)]

    first = auth_client.get("/api/v1/notifications?limit=2").json()
    second = auth_client.get(f"/api/v1/notifications?limit=2&cursor={first['next_cursor']}").json()
    third = auth_client.get(f"/api/v1/notifications?limit=2&cursor={second['next_cursor']}").json()

    seen = [item["id"] for page in (first, second, third) for item in page["data"]]
    assert seen == ids
    assert third["next_cursor"] is None


def test_filters_by_status_and_template(auth_client, user):
    failed = notification(user, status="failed", last_error="SMTPRecipientsRefused: 550")
    notification(user, status="sent")

    body = auth_client.get("/api/v1/notifications?status=failed").json()

    assert [item["id"] for item in body["data"]] == [failed.pk]
    assert body["data"][0]["last_error"] == "SMTPRecipientsRefused: 550"
    assert auth_client.get("/api/v1/notifications?template=transfer_sent").json()["data"] == []


@pytest.mark.parametrize(
    ("query", "param"), [("status=lost", "status"), ("template=spam", "template"), ("limit=0", "limit")]
)
def test_bad_filters_are_400_in_the_envelope(auth_client, query, param):
    response = auth_client.get(f"/api/v1/notifications?{query}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_one_notification_by_id_and_another_users_is_404(auth_client, user, other_user):
    mine, theirs = notification(user), notification(other_user)

    assert auth_client.get(f"/api/v1/notifications/{mine.pk}").json()["id"] == mine.pk
    for missing in (theirs.pk, "ntf_nope"):
        response = auth_client.get(f"/api/v1/notifications/{missing}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"
        assert theirs.to not in response.content.decode()


def test_an_api_key_sees_its_users_history(api_key_client, user):
    mine = notification(user)

    assert [item["id"] for item in api_key_client.get("/api/v1/notifications").json()["data"]] == [mine.pk]


def test_anonymous_is_401_in_the_envelope(api_client):
    response = api_client.get("/api/v1/notifications")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_the_list_is_in_the_openapi_schema(api_client):
    schema = api_client.get("/api/v1/schema?format=json").json()

    operation = schema["paths"]["/api/v1/notifications"]["get"]
    assert operation["operationId"] == "notifications_list"
    assert {p["name"] for p in operation["parameters"]} >= {"status", "template", "limit", "cursor"}
    assert "/api/v1/notifications/{notification_id}" in schema["paths"]
    assert "Notification" in schema["components"]["schemas"]


def test_the_list_costs_a_fixed_number_of_queries(auth_client, user, django_assert_max_num_queries):
    for minutes in range(15):
        notification(user, minutes_ago=minutes)
    auth_client.get("/api/v1/notifications")  # warm the session cache

    with django_assert_max_num_queries(3):
        assert len(auth_client.get("/api/v1/notifications").json()["data"]) == 15
