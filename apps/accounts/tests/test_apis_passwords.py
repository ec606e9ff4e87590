"""`POST /auth/password`, `/auth/password-reset`, `/auth/password-reset/confirm` (API.md "Auth"), and
the rule they share with the admin: a new password ends every session of the user."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import AuthSession, PasswordResetToken, User
from apps.accounts.services import api_key_create, password_reset_token_create
from apps.accounts.tasks import send_password_reset_email
from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.audit.models import AuditLog
from apps.core.pci import find_card_data

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
ME = "/api/v1/auth/me"
PASSWORD = "/api/v1/auth/password"
RESET = "/api/v1/auth/password-reset"
CONFIRM = "/api/v1/auth/password-reset/confirm"
NEW_PASSWORD = "a brand new passphrase 42"

pytestmark = pytest.mark.django_db


def login(user, password=DEFAULT_PASSWORD) -> dict:
    response = APIClient().post(LOGIN, {"email": user.email, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def assert_signed_out_everywhere(user, sessions: list[dict]) -> None:
    for tokens in sessions:
        assert bearer(tokens["access"]).get(ME).status_code == 401
        assert APIClient().post(REFRESH, {"refresh": tokens["refresh"]}).status_code == 401
    assert not AuthSession.objects.filter(user=user, revoked_at__isnull=True).exists()


# --- POST /auth/password --------------------------------------------------------------------------


def test_changing_the_password_ends_every_session_of_the_user(
    user, other_user, django_capture_on_commit_callbacks
):
    phone, laptop, bystander = login(user), login(user), login(other_user)
    assert bearer(laptop["access"]).get(ME).status_code == 200  # the session state is now cached

    with django_capture_on_commit_callbacks(execute=True):
        response = bearer(phone["access"]).post(
            PASSWORD, {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}
        )

    assert response.status_code == 204
    assert_signed_out_everywhere(user, [phone, laptop])
    assert bearer(bystander["access"]).get(ME).status_code == 200
    assert APIClient().post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}).status_code == 401
    login(user, NEW_PASSWORD)
    changed = AuditLog.objects.get(action="user.password_changed", entity_id=user.id)
    assert (changed.actor_id, changed.after) == (user.id, {"reason": "password_changed"})
    ended = AuditLog.objects.get(action="user.sessions_ended", entity_id=user.id)
    assert sorted(ended.after["sessions"]) == sorted(
        AuthSession.objects.filter(user=user, revoked_reason="password_changed").values_list("id", flat=True)
    )
    assert len(ended.after["sessions"]) == 2


def test_a_wrong_current_password_counts_like_a_failed_login(user, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    client = bearer(login(user)["access"])
    wrong = [
        client.post(PASSWORD, {"current_password": "a wrong guess", "new_password": NEW_PASSWORD})
        for _ in range(2)
    ]

    locked = client.post(PASSWORD, {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD})
    login_too = APIClient().post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})

    assert [r.status_code for r in wrong] == [401, 401]
    assert wrong[0].json()["error"]["code"] == "invalid_credentials"
    assert locked.status_code == login_too.status_code == 429
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    failures = AuditLog.objects.filter(action="user.login_failed", entity_id=user.id)
    assert [row.after for row in failures] == [{"reason": "wrong_password", "channel": "password_change"}] * 2
    assert AuthSession.objects.filter(user=user, revoked_at__isnull=True).count() == 1


def test_a_weak_new_password_is_400_and_changes_nothing(user):
    tokens = login(user)

    response = bearer(tokens["access"]).post(
        PASSWORD, {"current_password": DEFAULT_PASSWORD, "new_password": "short"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "password_too_weak"
    assert response.json()["error"]["param"] == "new_password"
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    assert bearer(tokens["access"]).get(ME).status_code == 200


def test_an_api_key_cannot_change_the_password(user):
    _, secret = api_key_create(user=user, name="server", actor=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")

    response = client.post(PASSWORD, {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD})

    assert response.status_code == 403
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


# --- POST /auth/password-reset --------------------------------------------------------------------


def _token_from(message) -> str:
    match = re.search(r"\?token=([A-Za-z0-9_\-]+)", message.body)
    assert match, message.body
    return match.group(1)


def test_a_known_address_gets_a_single_use_link_stored_hashed(
    api_client, user, settings, django_capture_on_commit_callbacks
):
    settings.PASSWORD_RESET_URL = "https://app.paydesk.test/reset"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(RESET, {"email": user.email.upper()})

    assert response.status_code == 202
    assert response.content == b""
    [message] = mail.outbox
    assert message.to == [user.email]
    assert "Reset your Paydesk password" in message.subject
    assert "https://app.paydesk.test/reset?token=" in message.body
    assert "https://app.paydesk.test/reset?token=" in message.alternatives[0][0]
    token = _token_from(message)
    [reset] = PasswordResetToken.objects.filter(user=user)
    assert reset.hashed_token == hashlib.sha256(token.encode()).hexdigest()
    assert reset.hashed_token != token
    assert timedelta(minutes=59) < reset.expires_at - timezone.now() <= timedelta(hours=1)
    assert AuditLog.objects.filter(action="user.password_reset_requested", entity_id=user.id).exists()
    assert token not in str(AuditLog.objects.values_list("after", flat=True))


def test_an_unknown_address_gets_the_same_202_and_no_email(
    api_client, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        known = api_client.post(RESET, {"email": user.email})
        unknown = api_client.post(RESET, {"email": "nobody@example.com"})

    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert [message.to for message in mail.outbox] == [[user.email]]
    assert PasswordResetToken.objects.count() == 1


def test_reset_requests_are_throttled_per_address(api_client, user, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "password_reset": "2/hour",
        },
    }
    for _ in range(2):
        assert api_client.post(RESET, {"email": user.email}).status_code == 202

    response = api_client.post(RESET, {"email": user.email})

    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert PasswordResetToken.objects.count() == 2


def test_a_malformed_reset_request_is_400(api_client):
    response = api_client.post(RESET, {"email": "not an email"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "email"


# --- POST /auth/password-reset/confirm ------------------------------------------------------------


def test_confirming_sets_the_password_once_and_ends_every_session(
    api_client, user, django_capture_on_commit_callbacks
):
    sessions = [login(user), login(user)]
    assert bearer(sessions[0]["access"]).get(ME).status_code == 200
    token = password_reset_token_create(user=user)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(CONFIRM, {"token": token, "new_password": NEW_PASSWORD})
    again = api_client.post(CONFIRM, {"token": token, "new_password": "yet another passphrase 7"})

    assert response.status_code == 204
    assert_signed_out_everywhere(user, sessions)
    login(user, NEW_PASSWORD)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "token_invalid"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert PasswordResetToken.objects.get(user=user).used_at is not None
    assert AuditLog.objects.get(action="user.password_changed", entity_id=user.id).after == {
        "reason": "password_reset"
    }


def test_a_reset_kills_the_users_other_links_too(api_client, user):
    first, second = password_reset_token_create(user=user), password_reset_token_create(user=user)

    assert api_client.post(CONFIRM, {"token": second, "new_password": NEW_PASSWORD}).status_code == 204

    assert (
        api_client.post(CONFIRM, {"token": first, "new_password": "yet another passphrase 7"}).status_code
        == 400
    )


def test_an_expired_or_unknown_token_is_400_token_invalid(api_client, user):
    expired = password_reset_token_create(user=user)
    PasswordResetToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    responses = [
        api_client.post(CONFIRM, {"token": expired, "new_password": NEW_PASSWORD}),
        api_client.post(CONFIRM, {"token": "made-up-token", "new_password": NEW_PASSWORD}),
    ]

    assert [r.status_code for r in responses] == [400, 400]
    assert {r.json()["error"]["code"] for r in responses} == {"token_invalid"}
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_a_weak_password_on_confirm_is_400_and_the_link_still_works(api_client, user):
    token = password_reset_token_create(user=user)

    weak = api_client.post(CONFIRM, {"token": token, "new_password": "password"})

    assert weak.status_code == 400
    assert weak.json()["error"]["code"] == "password_too_weak"
    assert api_client.post(CONFIRM, {"token": token, "new_password": NEW_PASSWORD}).status_code == 204


# --- the admin ------------------------------------------------------------------------------------


def test_a_password_set_in_the_admin_ends_every_session_of_the_user(
    admin_client, user, django_capture_on_commit_callbacks
):
    sessions = [login(user), login(user)]
    assert bearer(sessions[0]["access"]).get(ME).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/accounts/user/{user.pk}/password/",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        )

    assert response.status_code == 302, response.content[:2000]
    assert User.objects.get(pk=user.pk).check_password(NEW_PASSWORD)
    assert_signed_out_everywhere(user, sessions)
    assert (
        AuditLog.objects.get(action="user.sessions_ended", entity_id=user.id).after["reason"]
        == "password_changed"
    )


def test_saving_a_user_without_a_new_password_ends_no_session(admin_client, user):
    tokens = login(user)
    user.full_name = "Renamed"
    user.save()

    assert bearer(tokens["access"]).get(ME).status_code == 200
    assert not AuditLog.objects.filter(action="user.sessions_ended").exists()
    assert UserFactory().pk  # a new user (its first password) ends nothing either
    assert not AuditLog.objects.filter(action="user.sessions_ended").exists()


def test_the_email_worker_gets_an_id_and_sends_nothing_for_a_link_used_meanwhile(api_client, user):
    token = password_reset_token_create(user=user)
    reset = PasswordResetToken.objects.get(user=user)
    assert token not in reset.pk

    assert send_password_reset_email.apply(args=[reset.pk]).get() is True
    assert _token_from(mail.outbox[0]) == token
    api_client.post(CONFIRM, {"token": token, "new_password": NEW_PASSWORD})

    assert send_password_reset_email.apply(args=[reset.pk]).get() is False
    assert len(mail.outbox) == 1


def test_one_mailbox_gets_a_bounded_number_of_reset_emails_whoever_asks(
    api_client, user, settings, django_capture_on_commit_callbacks
):
    settings.PASSWORD_RESET_EMAILS_PER_HOUR = 2
    with django_capture_on_commit_callbacks(execute=True):
        statuses = [
            api_client.post(RESET, {"email": user.email}, REMOTE_ADDR=f"203.0.113.{n}").status_code
            for n in range(4)
        ]

    assert statuses == [202] * 4
    assert len(mail.outbox) == 2
    assert PasswordResetToken.objects.filter(user=user).count() == 2


@pytest.mark.django_db
def test_no_reset_token_is_ever_mistaken_for_card_data(user):
    # A token goes back in a request body, where any Luhn-valid run of 13-19 digits is refused
    # (apps.core.pci). As hex, about one token in a hundred held such a run: a link that never worked.
    tokens = [password_reset_token_create(user=user) for _ in range(2_000)]

    assert [token for token in tokens if find_card_data({"token": token})] == []
