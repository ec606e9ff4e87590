"""Refresh rotation, replay detection and logout, as a client sees them."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from apps.accounts.models import AuthSession
from apps.accounts.tests.factories import DEFAULT_PASSWORD
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"

pytestmark = pytest.mark.django_db


def login(client, user) -> dict:
    response = client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    return response.json()


def me(client, access: str):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")


def test_refresh_rotates_the_pair(api_client, user):
    first = login(api_client, user)

    response = api_client.post(REFRESH, {"refresh": first["refresh"]})

    assert response.status_code == 200
    second = response.json()
    assert set(second) == {"access", "refresh"}
    assert second["refresh"] != first["refresh"]
    assert me(api_client, second["access"]).status_code == 200
    assert api_client.post(REFRESH, {"refresh": second["refresh"]}).status_code == 200


def test_a_refreshed_away_token_is_dead_and_its_reuse_ends_the_session(
    api_client, user, django_capture_on_commit_callbacks
):
    first = login(api_client, user)
    second = api_client.post(REFRESH, {"refresh": first["refresh"]}).json()
    assert me(api_client, second["access"]).status_code == 200  # the session state is now cached

    with django_capture_on_commit_callbacks(execute=True):
        replay = api_client.post(REFRESH, {"refresh": first["refresh"]})

    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "refresh_token_reused"
    # every token of the session is dead now, the newest included
    assert api_client.post(REFRESH, {"refresh": second["refresh"]}).status_code == 401
    assert me(api_client, second["access"]).status_code == 401
    assert me(api_client, first["access"]).status_code == 401
    session = AuthSession.objects.get(user=user)
    assert session.revoked_reason == "refresh_token_reuse"


def test_refresh_token_reuse_is_audited_and_announced(api_client, user):
    first = login(api_client, user)
    api_client.post(REFRESH, {"refresh": first["refresh"]})

    api_client.post(REFRESH, {"refresh": first["refresh"]})

    session = AuthSession.objects.get(user=user)
    audit = AuditLog.objects.get(action="session.revoked", entity_id=session.id)
    assert audit.after["reason"] == "refresh_token_reuse"
    assert audit.actor_type == "system"
    event = OutboxEvent.objects.get(event_type="session.revoked", aggregate_id=session.id)
    assert event.payload == {"session_id": session.id, "user_id": user.id, "reason": "refresh_token_reuse"}


def test_reuse_ends_only_that_session(api_client, user):
    stolen = login(api_client, user)
    other_device = login(api_client, user)
    api_client.post(REFRESH, {"refresh": stolen["refresh"]})

    api_client.post(REFRESH, {"refresh": stolen["refresh"]})

    assert me(api_client, other_device["access"]).status_code == 200
    assert api_client.post(REFRESH, {"refresh": other_device["refresh"]}).status_code == 200


def test_rotated_tokens_are_blacklisted_and_no_raw_token_is_stored(api_client, user):
    first = login(api_client, user)
    second = api_client.post(REFRESH, {"refresh": first["refresh"]}).json()

    old_jti = RefreshToken(first["refresh"], verify=False)["jti"]
    assert BlacklistedToken.objects.filter(token__jti=old_jti).exists()
    stored = list(OutstandingToken.objects.values_list("token", flat=True))
    assert first["refresh"] not in stored
    assert second["refresh"] not in stored


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_refresh_with_a_malformed_token_is_rejected(api_client, token):
    response = api_client.post(REFRESH, {"refresh": token})

    assert response.status_code in (400, 401)
    assert response.json()["error"]["type"] in ("invalid_request_error", "authentication_error")


def test_refresh_with_an_access_token_is_401(api_client, user):
    tokens = login(api_client, user)

    response = api_client.post(REFRESH, {"refresh": tokens["access"]})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def test_refresh_with_a_forged_signature_is_401(api_client, user):
    tokens = login(api_client, user)
    header, payload, signature = tokens["refresh"].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"

    response = api_client.post(REFRESH, {"refresh": forged})

    assert response.status_code == 401
    # a forgery is not a replay: the session lives on
    assert me(api_client, tokens["access"]).status_code == 200


def test_refresh_with_an_expired_token_is_401(api_client, user, settings):
    tokens = login(api_client, user)
    token = RefreshToken(tokens["refresh"], verify=False)
    token.set_exp(lifetime=-token.lifetime)

    response = api_client.post(REFRESH, {"refresh": str(token)})

    assert response.status_code == 401


def test_logout_kills_the_refresh_and_the_access_tokens_of_the_session(
    api_client, user, django_capture_on_commit_callbacks
):
    tokens = login(api_client, user)
    assert me(api_client, tokens["access"]).status_code == 200  # the session state is now cached

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(LOGOUT, {"refresh": tokens["refresh"]})

    assert response.status_code == 204
    assert response.content == b""
    assert me(api_client, tokens["access"]).status_code == 401
    assert api_client.post(REFRESH, {"refresh": tokens["refresh"]}).status_code == 401
    assert api_client.post(LOGOUT, {"refresh": tokens["refresh"]}).status_code == 401


def test_logout_leaves_the_users_other_sessions_alone(api_client, user):
    phone = login(api_client, user)
    laptop = login(api_client, user)

    api_client.post(LOGOUT, {"refresh": phone["refresh"]})

    assert me(api_client, laptop["access"]).status_code == 200


def test_logout_is_audited_and_announced(api_client, user):
    tokens = login(api_client, user)

    api_client.post(LOGOUT, {"refresh": tokens["refresh"]})

    session = AuthSession.objects.get(user=user)
    assert session.revoked_reason == "logout"
    audit = AuditLog.objects.get(action="user.logged_out", entity_id=user.id)
    assert audit.after == {"session_id": session.id}
    assert audit.actor_id == user.id
    event = OutboxEvent.objects.get(event_type="user.logged_out", aggregate_id=user.id)
    assert event.payload == {"user_id": user.id, "session_id": session.id}


def test_logout_with_a_rotated_away_refresh_ends_the_session_as_a_replay(api_client, user):
    first = login(api_client, user)
    second = api_client.post(REFRESH, {"refresh": first["refresh"]}).json()

    response = api_client.post(LOGOUT, {"refresh": first["refresh"]})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "refresh_token_reused"
    assert me(api_client, second["access"]).status_code == 401


def test_logout_without_a_refresh_token_is_400(api_client):
    response = api_client.post(LOGOUT, {})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "refresh"


def test_a_deactivated_users_tokens_stop_working(api_client, user):
    tokens = login(api_client, user)
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert me(api_client, tokens["access"]).status_code == 401
    assert api_client.post(REFRESH, {"refresh": tokens["refresh"]}).status_code == 401


def test_a_session_older_than_its_maximum_age_cannot_be_refreshed(api_client, user, settings):
    settings.SESSION_MAX_AGE_SECONDS = 30 * 86_400
    tokens = login(api_client, user)
    for _ in range(3):  # rotating keeps minting fresh 7-day refresh tokens...
        tokens = api_client.post(REFRESH, {"refresh": tokens["refresh"]}).json()
    # ...but the session was opened 30 days ago (time travel)
    AuthSession.objects.filter(user=user).update(created_at=timezone.now() - timedelta(days=30, seconds=1))

    response = api_client.post(REFRESH, {"refresh": tokens["refresh"]})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_expired"
    session = AuthSession.objects.get(user=user)
    assert session.revoked_reason == "max_age"
    assert me(api_client, tokens["access"]).status_code == 401
    audit = AuditLog.objects.get(action="session.revoked", entity_id=session.id)
    assert audit.after["reason"] == "max_age"


def test_no_token_of_a_session_expires_after_the_session_does(api_client, user, settings):
    settings.SESSION_MAX_AGE_SECONDS = 600  # shorter than the access (15 min) and refresh (7 d) lifetimes
    tokens = login(api_client, user)
    refreshed = api_client.post(REFRESH, {"refresh": tokens["refresh"]}).json()

    session = AuthSession.objects.get(user=user)
    ends = int((session.created_at + timedelta(seconds=600)).timestamp())
    for pair in (tokens, refreshed):
        assert RefreshToken(pair["refresh"], verify=False)["exp"] <= ends + 1
        assert AccessToken(pair["access"], verify=False)["exp"] <= ends + 1
