import time
from types import SimpleNamespace

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher

from apps.accounts import ratelimits
from apps.accounts.models import AuthSession
from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"

pytestmark = pytest.mark.django_db


def test_login_returns_a_token_pair_and_the_user(api_client, user):
    response = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "user"}
    assert body["user"] == {
        "id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "roles": ["customer"],
    }
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert api_client.get(ME).json()["id"] == user.id


def test_login_matches_the_email_whatever_its_case(api_client):
    user = UserFactory(email="Ada@Example.com")

    response = api_client.post(LOGIN, {"email": "  aDA@example.COM", "password": DEFAULT_PASSWORD})

    assert response.status_code == 200
    assert response.json()["user"]["id"] == user.id


def test_login_opens_a_session_with_the_client_address_and_agent(api_client, user):
    api_client.post(
        LOGIN,
        {"email": user.email, "password": DEFAULT_PASSWORD},
        REMOTE_ADDR="198.51.100.4",
        HTTP_USER_AGENT="curl/8",
    )

    session = AuthSession.objects.get(user=user)
    assert (session.ip, session.user_agent, session.revoked_at) == ("198.51.100.4", "curl/8", None)
    audit = AuditLog.objects.get(action="user.logged_in", entity_id=user.id)
    assert audit.after == {"session_id": session.id}
    assert audit.actor_id == user.id
    event = OutboxEvent.objects.get(event_type="user.logged_in", aggregate_id=user.id)
    assert event.payload == {"user_id": user.id, "session_id": session.id}


def test_wrong_password_and_unknown_email_get_the_same_401(api_client, user):
    wrong_password = api_client.post(LOGIN, {"email": user.email, "password": "not the password"})
    unknown_email = api_client.post(LOGIN, {"email": "nobody@example.com", "password": "not the password"})

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.json()["error"] == {
        "type": "authentication_error",
        "code": "invalid_credentials",
        "message": "Incorrect email or password.",
        "param": None,
    }
    assert not AuthSession.objects.exists()


def test_an_inactive_user_gets_the_same_401_with_the_right_password(api_client):
    user = UserFactory(is_active=False)

    response = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


class CountingHasher(MD5PasswordHasher):
    calls = 0

    def encode(self, password, salt):
        type(self).calls += 1
        return super().encode(password, salt)


def test_unknown_email_costs_a_password_hash_like_a_known_one(api_client, user, settings):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.calls = 0

    api_client.post(LOGIN, {"email": "nobody@example.com", "password": "whatever it is"})

    assert CountingHasher.calls == 1


def test_failed_login_of_a_known_user_is_audited_and_announced(api_client, user):
    api_client.post(LOGIN, {"email": user.email, "password": "not the password"})

    audit = AuditLog.objects.get(action="user.login_failed", entity_id=user.id)
    assert audit.after == {"reason": "wrong_password"}
    event = OutboxEvent.objects.get(event_type="user.login_failed", aggregate_id=user.id)
    assert event.payload == {"user_id": user.id, "reason": "wrong_password"}


def test_failed_login_of_an_unknown_email_is_audited(api_client):
    api_client.post(LOGIN, {"email": "probe@example.com", "password": "not the password"})

    audit = AuditLog.objects.get(action="user.login_failed")
    assert audit.after == {"email": "probe@example.com", "reason": "unknown_email"}


def test_repeated_failures_lock_the_email_even_for_the_right_password(api_client, user, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert api_client.post(LOGIN, {"email": user.email, "password": "wrong guess"}).status_code == 401

    locked = api_client.post(LOGIN, {"email": user.email.upper(), "password": DEFAULT_PASSWORD})

    assert locked.status_code == 429
    assert locked.json()["error"]["type"] == "rate_limit_error"
    assert locked.json()["error"]["code"] == "too_many_failed_logins"
    assert 0 < int(locked["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS
    assert not AuthSession.objects.exists()
    # another email is not affected
    other = UserFactory()
    assert api_client.post(LOGIN, {"email": other.email, "password": DEFAULT_PASSWORD}).status_code == 200


def test_a_strangers_failures_lock_only_their_address_never_the_owner(api_client, user):
    stranger, owner = {"REMOTE_ADDR": "203.0.113.9"}, {"REMOTE_ADDR": "198.51.100.4"}
    statuses = [
        api_client.post(LOGIN, {"email": user.email, "password": f"guess {n}"}, **stranger).status_code
        for n in range(6)
    ]

    from_stranger = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, **stranger)
    from_owner = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, **owner)

    assert statuses == [401] * 5 + [429]
    assert from_stranger.status_code == 429
    assert from_owner.status_code == 200
    assert list(AuthSession.objects.filter(user=user).values_list("ip", flat=True)) == ["198.51.100.4"]
    assert AuditLog.objects.filter(action="user.login_failed", entity_id=user.id).count() == 5


class _Clock:
    """The rate limits' clock, moved by hand: the test does not depend on how fast the machine is
    (on a loaded one a real sleep let the remembered failures expire before the next attempt)."""

    def __init__(self, monkeypatch) -> None:
        self.now = time.time()
        monkeypatch.setattr(ratelimits, "time", SimpleNamespace(time=lambda: self.now))

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_each_failure_after_the_lock_doubles_it(api_client, user, settings, monkeypatch):
    settings.LOGIN_FAILURE_LIMIT = 2
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    clock = _Clock(monkeypatch)
    for _ in range(2):
        assert api_client.post(LOGIN, {"email": user.email, "password": "wrong guess"}).status_code == 401
    first_lock = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})
    clock.advance(1.1)
    assert api_client.post(LOGIN, {"email": user.email, "password": "wrong guess"}).status_code == 401

    second_lock = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    assert first_lock.status_code == second_lock.status_code == 429
    assert int(first_lock["Retry-After"]) == 1
    assert int(second_lock["Retry-After"]) == 2
    assert not AuthSession.objects.exists()


def test_a_guess_spread_over_many_addresses_gets_one_failure_per_address(api_client, user, settings):
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 3
    for n in range(3):
        api_client.post(LOGIN, {"email": user.email, "password": "wrong guess"}, REMOTE_ADDR=f"203.0.113.{n}")

    again = api_client.post(
        LOGIN, {"email": user.email, "password": "wrong guess"}, REMOTE_ADDR="203.0.113.0"
    )
    clean = api_client.post(
        LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, REMOTE_ADDR="192.0.2.7"
    )

    assert again.status_code == 429
    assert clean.status_code == 200
    assert AuditLog.objects.filter(action="user.login_failed", entity_id=user.id).count() == 3


def test_the_lock_lifts_when_the_window_ends(api_client, user, settings):
    settings.LOGIN_FAILURE_LIMIT = 1
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    api_client.post(LOGIN, {"email": user.email, "password": "wrong guess"})
    assert api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).status_code == 429

    time.sleep(1.1)

    assert api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).status_code == 200


def test_a_successful_login_clears_the_failures(api_client, user, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(2):
        api_client.post(LOGIN, {"email": user.email, "password": "wrong guess"})
    assert api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).status_code == 200

    for _ in range(2):
        assert api_client.post(LOGIN, {"email": user.email, "password": "wrong guess"}).status_code == 401
    assert api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).status_code == 200


def test_login_is_throttled_per_ip(api_client, user, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "login_ip": "2/minute",
        },
    }
    for _ in range(2):
        api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    response = api_client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert 0 < int(response["Retry-After"]) <= 60


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"password": "x"}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "nope", "password": "x"}, "email"),
    ],
)
def test_login_with_a_malformed_body_is_400(api_client, body, param):
    response = api_client.post(LOGIN, body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_login_refuses_a_body_that_is_not_json(api_client):
    response = api_client.post(LOGIN, "email=a@example.com", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["error"]["type"] == "invalid_request_error"
