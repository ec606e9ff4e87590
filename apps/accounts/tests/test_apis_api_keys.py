import hashlib

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import ApiKey
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent

API_KEYS = "/api/v1/api-keys"
ME = "/api/v1/auth/me"

pytestmark = pytest.mark.django_db


def create_key(client, name="server") -> dict:
    response = client.post(API_KEYS, {"name": name})
    assert response.status_code == 201
    return response.json()


def key_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    return client


def test_create_shows_the_key_once_and_stores_only_its_hash(auth_client, user):
    body = create_key(auth_client, name="billing server")

    assert body["id"].startswith("key_")
    assert body["name"] == "billing server"
    assert body["key"].startswith("pdk_")
    assert len(body["key"]) == 44
    assert body["prefix"] == body["key"][:12]
    assert body["revoked_at"] is None
    assert body["last_used_at"] is None
    api_key = ApiKey.objects.get(pk=body["id"])
    assert api_key.user == user
    assert api_key.hashed_key == hashlib.sha256(body["key"].encode()).hexdigest()
    stored = ApiKey.objects.filter(pk=body["id"]).values().get()
    assert body["key"] not in [str(value) for value in stored.values()]


def test_the_key_is_never_shown_again(auth_client):
    body = create_key(auth_client)

    listed = auth_client.get(API_KEYS).json()

    assert body["key"] not in str(listed)
    assert listed["data"] == [
        {
            "id": body["id"],
            "name": body["name"],
            "prefix": body["prefix"],
            "created_at": body["created_at"],
            "last_used_at": None,
            "revoked_at": None,
        }
    ]
    assert listed["next_cursor"] is None


def test_the_key_authenticates_as_its_user(auth_client, user):
    secret = create_key(auth_client)["key"]

    response = key_client(secret).get(ME)

    assert response.status_code == 200
    assert response.json()["id"] == user.id


def test_the_key_scheme_is_case_insensitive(auth_client):
    secret = create_key(auth_client)["key"]

    assert APIClient().get(ME, HTTP_AUTHORIZATION=f"api-key {secret}").status_code == 200


def test_a_revoked_key_stops_working_at_once(auth_client, django_capture_on_commit_callbacks):
    body = create_key(auth_client)
    client = key_client(body["key"])
    assert client.get(ME).status_code == 200  # the key is in the authentication cache now

    with django_capture_on_commit_callbacks(execute=True):  # the revocation commits
        response = auth_client.delete(f"{API_KEYS}/{body['id']}")

    assert response.status_code == 204
    assert client.get(ME).status_code == 401
    listed = auth_client.get(API_KEYS).json()["data"]
    assert listed[0]["revoked_at"] is not None


def test_revoking_twice_is_a_no_op(auth_client):
    body = create_key(auth_client)
    auth_client.delete(f"{API_KEYS}/{body['id']}")

    response = auth_client.delete(f"{API_KEYS}/{body['id']}")

    assert response.status_code == 204
    assert AuditLog.objects.filter(action="api_key.revoked", entity_id=body["id"]).count() == 1


def test_create_and_revoke_are_audited_and_announced(auth_client, user):
    body = create_key(auth_client, name="ci")
    auth_client.delete(f"{API_KEYS}/{body['id']}")

    created = AuditLog.objects.get(action="api_key.created", entity_id=body["id"])
    assert created.actor_id == user.id
    assert created.after == {"name": "ci", "user_id": user.id}
    revoked = AuditLog.objects.get(action="api_key.revoked", entity_id=body["id"])
    assert revoked.before == {"revoked_at": None}
    events = OutboxEvent.objects.filter(aggregate_id=body["id"]).order_by("created_at")
    assert [event.event_type for event in events] == ["api_key.created", "api_key.revoked"]


def test_a_user_never_sees_another_users_keys(auth_client, client_for, other_user):
    theirs = create_key(client_for(other_user))

    listed = auth_client.get(API_KEYS).json()["data"]

    assert listed == []
    assert theirs["id"] not in str(listed)


def test_a_user_cannot_revoke_another_users_key(auth_client, client_for, other_user):
    theirs = create_key(client_for(other_user))

    response = auth_client.delete(f"{API_KEYS}/{theirs['id']}")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert key_client(theirs["key"]).get(ME).status_code == 200


def test_an_unknown_key_id_is_404(auth_client):
    assert auth_client.delete(f"{API_KEYS}/key_doesnotexist").status_code == 404


def test_an_api_key_cannot_mint_or_revoke_keys(api_key_client, user):
    key = user.api_keys.get()

    minted = api_key_client.post(API_KEYS, {"name": "escalation"})
    revoked = api_key_client.delete(f"{API_KEYS}/{key.id}")

    assert minted.status_code == revoked.status_code == 403
    assert minted.json()["error"]["code"] == "api_key_not_allowed"
    assert user.api_keys.count() == 1
    assert user.api_keys.get().revoked_at is None


def test_anonymous_requests_are_401(api_client):
    assert api_client.get(API_KEYS).status_code == 401
    assert api_client.post(API_KEYS, {"name": "x"}).status_code == 401


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 101}])
def test_create_needs_a_name(auth_client, body):
    response = auth_client.post(API_KEYS, body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "name"


def test_the_list_pages_newest_first(auth_client):
    ids = [create_key(auth_client, name=f"k{n}")["id"] for n in range(5)]

    first = auth_client.get(API_KEYS, {"limit": 2}).json()
    second = auth_client.get(API_KEYS, {"limit": 2, "cursor": first["next_cursor"]}).json()
    third = auth_client.get(API_KEYS, {"limit": 2, "cursor": second["next_cursor"]}).json()

    pages = [[key["id"] for key in page["data"]] for page in (first, second, third)]
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[0:1]]
    assert third["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "param"), [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"cursor": "x"}, "cursor")]
)
def test_the_list_refuses_bad_paging(auth_client, query, param):
    response = auth_client.get(API_KEYS, query)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
