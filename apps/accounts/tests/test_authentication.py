"""Who a request is: Bearer JWT bound to a live session, or an API key."""

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import AuthSession
from apps.accounts.services import auth_session_start

ME = "/api/v1/auth/me"
ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.django_db


def bearer(access: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


def test_me_returns_the_user(auth_client, user):
    response = auth_client.get(ME)

    assert response.status_code == 200
    assert response.json() == {
        "id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "roles": ["customer"],
    }


def test_me_with_an_api_key(api_key_client, user):
    response = api_key_client.get(ME)

    assert response.status_code == 200
    assert response.json()["id"] == user.id


def test_me_lists_every_role_of_a_staff_reviewer(client_for, staff_reviewer):
    response = client_for(staff_reviewer).get(ME)

    assert response.json()["roles"] == ["reviewer"]


def test_unauthenticated_is_401_not_403(api_client):
    response = api_client.get(ME)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-jwt",
        "Bearer a b",
        "Api-Key pdk_thisIsNotAKeyThatExists0000000000000000",
        "Api-Key",
        "Api-Key not-even-our-format",
    ],
)
def test_bad_credentials_are_401_in_the_envelope(api_client, header):
    response = api_client.get(ME, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_an_access_token_without_a_session_is_refused(api_client, user):
    # Signed with our key but minted outside a login (no `sid`): nothing could ever revoke it.
    token = AccessToken.for_user(user)

    assert api_client.get(ME, **bearer(str(token))).status_code == 401


def test_a_refresh_token_is_not_an_access_token(api_client, user):
    tokens = auth_session_start(user=user).tokens

    assert api_client.get(ME, **bearer(tokens.refresh)).status_code == 401


def test_an_expired_access_token_is_401(api_client, user):
    token = AccessToken(auth_session_start(user=user).tokens.access, verify=False)
    token.set_exp(lifetime=-token.lifetime)

    assert api_client.get(ME, **bearer(str(token))).status_code == 401


def test_an_authenticated_request_costs_no_query_once_cached(api_client, user, django_assert_num_queries):
    access = auth_session_start(user=user).tokens.access
    api_client.get(ME, **bearer(access))  # the first request reads the session and the user, caches both

    # the session's state, the user and their roles are all answered by the cache
    with django_assert_num_queries(0):
        response = api_client.get(ME, **bearer(access))

    assert response.status_code == 200
    assert response.json() == {
        "id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "roles": ["customer"],
    }


def test_a_cache_miss_falls_back_to_the_database(api_client, user):
    login = auth_session_start(user=user)
    api_client.get(ME, **bearer(login.tokens.access))
    # revoked behind the cache's back (another process, a lost invalidation), then the cache is lost
    AuthSession.objects.filter(pk=login.session.id).update(revoked_at=timezone.now())
    cache.delete_pattern("*")  # this run's keys only: clear() would flush the shared Redis db

    assert api_client.get(ME, **bearer(login.tokens.access)).status_code == 401


def test_api_key_use_is_recorded_at_most_once_a_minute(api_key_client, user):
    api_key = user.api_keys.get()
    assert api_key.last_used_at is None

    api_key_client.get(ME)
    api_key.refresh_from_db()
    first_use = api_key.last_used_at
    api_key_client.get(ME)
    api_key.refresh_from_db()

    assert first_use is not None
    assert api_key.last_used_at == first_use


def test_with_the_cache_down_the_database_decides(api_client, user, settings):
    live = auth_session_start(user=user).tokens.access
    ended = auth_session_start(user=user)
    AuthSession.objects.filter(pk=ended.session.id).update(revoked_at=timezone.now())
    # a real Redis client pointed at a port nobody listens on
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }

    assert api_client.get(ME, **bearer(live)).status_code == 200
    assert api_client.get(ME, **bearer(ended.tokens.access)).status_code == 401


def _token_with_another_users_sid(*, user, other_user) -> tuple[str, AuthSession]:
    """A well-signed access token for `user` carrying `other_user`'s live session id."""
    victim = auth_session_start(user=other_user)
    token = AccessToken.for_user(user)
    token["sid"] = victim.session.id
    return str(token), victim.session


@pytest.mark.parametrize("cached", [False, True], ids=["cache-miss", "cached"])
def test_a_token_with_another_users_live_session_is_refused(api_client, user, other_user, cached):
    forged, victims_session = _token_with_another_users_sid(user=user, other_user=other_user)
    if cached:  # the victim's own request has put their session's state in the cache
        victim_access = AccessToken.for_user(other_user)
        victim_access["sid"] = victims_session.id
        assert api_client.get(ME, **bearer(str(victim_access))).status_code == 200

    response = api_client.get(ME, **bearer(forged))

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    victims_session.refresh_from_db()
    assert victims_session.revoked_at is None  # refusing it did not end the victim's session


def test_a_token_with_another_users_sid_is_refused_with_the_cache_down(
    api_client, user, other_user, settings
):
    forged, _ = _token_with_another_users_sid(user=user, other_user=other_user)
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }

    assert api_client.get(ME, **bearer(forged)).status_code == 401


def _settings_signing_key(**variables: str) -> str:
    """SIMPLE_JWT's SIGNING_KEY as the settings compute it from these environment variables."""
    env = {name: value for name, value in os.environ.items() if name not in ("JWT_SIGNING_KEY", "SECRET_KEY")}
    code = "from config.settings import test as s; print(s.SIMPLE_JWT['SIGNING_KEY'])"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env | variables,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_jwts_are_signed_with_jwt_signing_key_when_set():
    assert _settings_signing_key(SECRET_KEY="s" * 50, JWT_SIGNING_KEY="j" * 50) == "j" * 50


@pytest.mark.parametrize("variables", [{}, {"JWT_SIGNING_KEY": ""}], ids=["unset", "empty"])
def test_without_jwt_signing_key_the_secret_key_signs(variables):
    # `JWT_SIGNING_KEY=` (.env.example) must not become an empty HMAC key
    assert _settings_signing_key(SECRET_KEY="s" * 50, **variables) == "s" * 50


@pytest.fixture
def jwt_signing_key(settings, monkeypatch):
    """JWT_SIGNING_KEY distinct from SECRET_KEY, as the settings make it when the variable is set."""
    key = "a-jwt-key-of-its-own-" + "k" * 40
    assert key != settings.SECRET_KEY
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": key}  # simplejwt reloads api_settings
    # ...but builds its token backend once, at import: rebuild it from the reloaded settings
    from rest_framework_simplejwt import settings as jwt_settings
    from rest_framework_simplejwt import state
    from rest_framework_simplejwt.backends import TokenBackend

    api = jwt_settings.api_settings
    monkeypatch.setattr(
        state, "token_backend", TokenBackend(api.ALGORITHM, api.SIGNING_KEY, api.VERIFYING_KEY)
    )
    return key


def test_a_token_signed_with_secret_key_is_refused_when_jwt_signing_key_is_set(
    api_client, user, settings, jwt_signing_key
):
    login = auth_session_start(user=user)
    claims = AccessToken(login.tokens.access).payload
    assert jwt.decode(login.tokens.access, jwt_signing_key, algorithms=["HS256"])  # minted with the JWT key
    forged = jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")

    assert api_client.get(ME, **bearer(forged)).status_code == 401
    assert api_client.get(ME, **bearer(login.tokens.access)).status_code == 200
