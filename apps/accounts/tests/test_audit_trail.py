"""Every auth event leaves one audit row and one outbox event; no secret ever reaches either."""

import json

import pytest

from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent

PASSWORD = "a long and unusual passphrase"

pytestmark = pytest.mark.django_db


def test_every_auth_event_is_audited_and_announced_without_secrets(api_client, settings):
    # given: one user going through everything the auth API does
    secrets = [PASSWORD, "wrong but secret guess"]
    user_id = api_client.post(
        "/api/v1/auth/register", {"email": "ada@example.com", "password": PASSWORD}
    ).json()["id"]
    api_client.post("/api/v1/auth/login", {"email": "ada@example.com", "password": "wrong but secret guess"})
    login = api_client.post("/api/v1/auth/login", {"email": "ada@example.com", "password": PASSWORD}).json()
    rotated = api_client.post("/api/v1/auth/refresh", {"refresh": login["refresh"]}).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated['access']}")
    key = api_client.post("/api/v1/api-keys", {"name": "server"}).json()
    api_client.delete(f"/api/v1/api-keys/{key['id']}")
    api_client.post("/api/v1/auth/logout", {"refresh": rotated["refresh"]})
    second = api_client.post("/api/v1/auth/login", {"email": "ada@example.com", "password": PASSWORD}).json()
    api_client.post("/api/v1/auth/refresh", {"refresh": second["refresh"]})
    api_client.post("/api/v1/auth/refresh", {"refresh": second["refresh"]})  # replay
    tokens = [pair[name] for pair in (login, rotated, second) for name in ("access", "refresh")]
    secrets += [*tokens, key["key"]]

    # then: one audit row and one event per auth event
    expected = [
        "user.registered",
        "user.login_failed",
        "user.logged_in",
        "api_key.created",
        "api_key.revoked",
        "user.logged_out",
        "user.logged_in",
        "session.revoked",
    ]
    audit_rows = list(AuditLog.objects.order_by("id"))
    events = list(OutboxEvent.objects.order_by("created_at", "id"))
    assert [row.action for row in audit_rows] == expected
    assert [event.event_type for event in events] == expected
    assert all(event.payload.get("user_id") == user_id for event in events)

    # and: no password, token or key anywhere in them
    stored = json.dumps([list(AuditLog.objects.values()), list(OutboxEvent.objects.values())], default=str)
    for secret in secrets:
        assert secret not in stored
    # (nor a recognisable piece of one: the JWT signature or the key's secret part)
    for token in tokens:
        assert token.rsplit(".", 1)[-1] not in stored
    assert key["key"][12:] not in stored
