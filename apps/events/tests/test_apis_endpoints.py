"""POST/GET/PATCH/DELETE /webhook-endpoints and rotate-secret, as API.md states them."""

import pytest
from django.db import connection

from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.events.models import WebhookEndpoint

URL = "https://hooks.example.com/paydesk"


def create(client, **body):
    return client.post(
        "/api/v1/webhook-endpoints", {"url": URL, "enabled_events": ["*"], **body}, format="json"
    )


def error(response):
    return response.json()["error"]


def test_creating_an_endpoint_shows_its_secret_once_and_stores_it_encrypted(auth_client, user):
    response = create(auth_client, enabled_events=["payment.succeeded", "payment.failed"], description="shop")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("we_")
    assert body["secret"].startswith("whsec_")
    assert len(body["secret"]) > 30
    assert {k: body[k] for k in ("object", "url", "enabled_events", "status", "description")} == {
        "object": "webhook_endpoint",
        "url": URL,
        "enabled_events": ["payment.succeeded", "payment.failed"],
        "status": "enabled",
        "description": "shop",
    }
    assert body["created_at"].endswith("Z")
    # stored encrypted: the column holds a token, never the secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM events_webhookendpoint WHERE id = %s", [body["id"]])
        (stored,) = cursor.fetchone()
    assert body["secret"] not in stored
    assert stored.startswith("v2.")
    assert WebhookEndpoint.objects.get(pk=body["id"]).secret == body["secret"]
    # never shown again, nor audited, nor in the outbox
    again = auth_client.get(f"/api/v1/webhook-endpoints/{body['id']}").json()
    assert "secret" not in again
    assert again["id"] == body["id"]
    listed = auth_client.get("/api/v1/webhook-endpoints").json()["data"]
    assert [item["id"] for item in listed] == [body["id"]]
    assert "secret" not in listed[0]
    audit = AuditLog.objects.get(action="webhook_endpoint.created", entity_id=body["id"])
    event = OutboxEvent.objects.get(event_type="webhook_endpoint.created", aggregate_id=body["id"])
    assert body["secret"] not in str(audit.after)
    assert body["secret"] not in str(event.payload)
    assert "/paydesk" not in str(event.payload)  # of the URL only its host


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "hooks.example.com/x",
        "javascript:alert(1)",
        "http://127.0.0.1:8000/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://172.16.5.4/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.100.100.200/",
        "http://0.0.0.0/",
        "http://[::1]/hooks",
        "http://[fe80::1]/hooks",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://224.0.0.1/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://2130706433/",
        "",
        12,
        None,
    ],
)
def test_a_url_that_is_not_public_http_is_refused_with_url_invalid(auth_client, url):
    response = create(auth_client, url=url)

    assert response.status_code == 400, response.content
    assert error(response)["code"] == "url_invalid"
    assert error(response)["param"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_private_urls_are_allowed_when_the_setting_says_so(auth_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True

    response = create(auth_client, url="http://127.0.0.1:9/hooks")

    assert response.status_code == 201
    assert create(auth_client, url="ftp://127.0.0.1/").json()["error"]["code"] == "url_invalid"


@pytest.mark.parametrize(
    ("events", "param"),
    [
        (["payment.exploded"], "enabled_events[0]"),
        (["payment.succeeded", "user.logged_in"], "enabled_events[1]"),  # not a public event
        (["payment.gateway_exchange"], "enabled_events[0]"),
        (["*", "payment.succeeded"], "enabled_events[0]"),
        ([], "enabled_events"),
        ("payment.succeeded", "enabled_events"),
        ([12], "enabled_events[0]"),
    ],
)
def test_unknown_event_types_are_refused_with_event_type_unknown(auth_client, events, param):
    response = create(auth_client, enabled_events=events)

    assert response.status_code == 400, response.content
    assert (error(response)["code"], error(response)["param"]) == ("event_type_unknown", param)
    assert not WebhookEndpoint.objects.exists()


def test_an_unknown_field_or_a_missing_one_is_refused(auth_client):
    unknown = create(auth_client, secret="whsec_mine")
    missing = auth_client.post("/api/v1/webhook-endpoints", {"url": URL}, format="json")
    long_description = create(auth_client, description="x" * 501)

    assert (unknown.status_code, error(unknown)["code"], error(unknown)["param"]) == (
        400,
        "parameter_unknown",
        "secret",
    )
    assert (missing.status_code, error(missing)["param"]) == (400, "enabled_events")
    assert (long_description.status_code, error(long_description)["param"]) == (400, "description")
    assert not WebhookEndpoint.objects.exists()


def test_another_owners_endpoint_is_a_404_for_every_call(auth_client, client_for, other_user):
    theirs = create(client_for(other_user)).json()["id"]
    base = f"/api/v1/webhook-endpoints/{theirs}"

    answers = [
        auth_client.get(base),
        auth_client.patch(base, {"description": "mine now"}, format="json"),
        auth_client.delete(base),
        auth_client.post(f"{base}/rotate-secret"),
        auth_client.get(f"{base}/deliveries"),
        auth_client.get("/api/v1/webhook-endpoints/we_nope"),
    ]

    assert [a.status_code for a in answers] == [404] * 6
    assert {error(a)["code"] for a in answers} == {"resource_missing"}
    assert auth_client.get("/api/v1/webhook-endpoints").json()["data"] == []
    assert WebhookEndpoint.objects.get(pk=theirs).description == ""


def test_the_list_pages_newest_first(auth_client):
    ids = [create(auth_client, description=f"n{i}").json()["id"] for i in range(3)]

    first = auth_client.get("/api/v1/webhook-endpoints?limit=2").json()
    second = auth_client.get(f"/api/v1/webhook-endpoints?limit=2&cursor={first['next_cursor']}").json()

    assert [item["id"] for item in first["data"] + second["data"]] == ids[::-1]
    assert second["next_cursor"] is None


def test_patch_changes_what_it_names_and_checks_it_like_creation(auth_client):
    endpoint = create(auth_client).json()
    path = f"/api/v1/webhook-endpoints/{endpoint['id']}"

    changed = auth_client.patch(
        path,
        {
            "url": "https://other.example.com/h",
            "enabled_events": ["subscription.renewed"],
            "status": "disabled",
        },
        format="json",
    )
    refused = auth_client.patch(path, {"url": "http://127.0.0.1/"}, format="json")
    bad_status = auth_client.patch(path, {"status": "paused"}, format="json")

    assert changed.status_code == 200, changed.content
    assert {k: changed.json()[k] for k in ("url", "enabled_events", "status", "description")} == {
        "url": "https://other.example.com/h",
        "enabled_events": ["subscription.renewed"],
        "status": "disabled",
        "description": None,
    }
    assert error(refused)["code"] == "url_invalid"
    assert (bad_status.status_code, error(bad_status)["param"]) == (400, "status")
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).url == "https://other.example.com/h"
    enabled = auth_client.patch(path, {"status": "enabled"}, format="json")
    assert enabled.json()["status"] == "enabled"


def test_delete_removes_the_endpoint(auth_client):
    endpoint = create(auth_client).json()

    response = auth_client.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}")

    assert response.status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoint["id"]).exists()
    assert auth_client.get(f"/api/v1/webhook-endpoints/{endpoint['id']}").status_code == 404
    assert AuditLog.objects.filter(action="webhook_endpoint.deleted", entity_id=endpoint["id"]).exists()


def test_rotating_the_secret_returns_a_new_one_and_keeps_the_old_one_for_a_day(auth_client):
    endpoint = create(auth_client).json()

    response = auth_client.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")

    assert response.status_code == 200
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != endpoint["secret"]
    stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert (stored.secret, stored.previous_secret) == (rotated["secret"], endpoint["secret"])
    hours = (stored.previous_secret_expires_at - stored.updated_at).total_seconds() / 3600
    assert 23.9 < hours <= 24


def test_anonymous_callers_get_401(api_client):
    assert api_client.get("/api/v1/webhook-endpoints").status_code == 401
    assert api_client.get("/api/v1/events").status_code == 401
