import pytest

from apps.accounts.models import Roles, User
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent

REGISTER = "/api/v1/auth/register"
PASSWORD = "a long and unusual passphrase"

pytestmark = pytest.mark.django_db


def test_register_creates_a_customer_and_returns_the_user(api_client):
    response = api_client.post(
        REGISTER, {"email": "Ada@Example.COM", "password": PASSWORD, "full_name": "Ada Lovelace"}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("usr_")
    assert body == {
        "id": body["id"],
        "email": "Ada@example.com",
        "full_name": "Ada Lovelace",
        "roles": ["customer"],
    }
    user = User.objects.get(pk=body["id"])
    assert user.check_password(PASSWORD)
    assert user.roles == [Roles.CUSTOMER]


def test_register_writes_an_audit_row_and_an_event_in_the_same_commit(api_client):
    response = api_client.post(REGISTER, {"email": "grace@example.com", "password": PASSWORD})

    user_id = response.json()["id"]
    audit = AuditLog.objects.get(action="user.registered", entity_id=user_id)
    assert audit.after["email"] == "grace@example.com"
    assert audit.after["roles"] == ["customer"]
    event = OutboxEvent.objects.get(event_type="user.registered", aggregate_id=user_id)
    assert event.payload == {"user_id": user_id, "roles": ["customer"]}


def test_register_with_an_email_taken_in_another_case_is_409(api_client, user):
    response = api_client.post(REGISTER, {"email": user.email.upper(), "password": PASSWORD})

    assert response.status_code == 409
    assert response.json()["error"] == {
        "type": "conflict_error",
        "code": "email_taken",
        "message": "A user with this email already exists.",
        "param": "email",
    }
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("83749261530", "entirely numeric"),
        ("grace.hopper@example.com", "too similar to the email"),
    ],
)
def test_register_with_a_weak_password_is_400_on_password(api_client, password, reason):
    response = api_client.post(REGISTER, {"email": "grace.hopper@example.com", "password": password})

    assert response.status_code == 400, reason
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "password_too_weak"
    assert error["param"] == "password"
    assert password not in response.content.decode()
    assert not User.objects.exists()


@pytest.mark.parametrize("email", ["not-an-email", "", "a@b@c.com", None, 42])
def test_register_with_a_bad_email_is_400_on_email(api_client, email):
    response = api_client.post(REGISTER, {"email": email, "password": PASSWORD})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "email"
    assert not User.objects.exists()


def test_register_without_a_password_is_400_parameter_missing(api_client):
    response = api_client.post(REGISTER, {"email": "ada@example.com"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_missing"
    assert response.json()["error"]["param"] == "password"


def test_register_keeps_whitespace_in_passwords(api_client):
    api_client.post(REGISTER, {"email": "ada@example.com", "password": f"  {PASSWORD}  "})

    user = User.objects.get(email="ada@example.com")
    assert user.check_password(f"  {PASSWORD}  ")
    assert not user.check_password(PASSWORD)


def test_register_is_throttled_per_ip(api_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "register": "2/hour"},
    }
    for n in range(2):
        assert (
            api_client.post(REGISTER, {"email": f"u{n}@example.com", "password": PASSWORD}).status_code == 201
        )

    response = api_client.post(REGISTER, {"email": "u3@example.com", "password": PASSWORD})

    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert 0 < int(response["Retry-After"]) <= 3600
    assert not User.objects.filter(email="u3@example.com").exists()
    # another client address has its own allowance
    other_ip = api_client.post(
        REGISTER, {"email": "u4@example.com", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9"
    )
    assert other_ip.status_code == 201


def test_register_throttle_ignores_a_spoofed_forwarded_for(api_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "register": "1/hour"},
    }
    api_client.post(REGISTER, {"email": "u1@example.com", "password": PASSWORD})

    response = api_client.post(
        REGISTER, {"email": "u2@example.com", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.7"
    )

    assert response.status_code == 429
