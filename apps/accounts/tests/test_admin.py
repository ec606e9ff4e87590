import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import ApiKey, AuthSession, User
from apps.accounts.services import api_key_create, auth_session_start
from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.audit.models import AuditLog

pytestmark = pytest.mark.django_db


def test_user_list_and_search_by_email(admin_client, user, other_user):
    response = admin_client.get(reverse("admin:accounts_user_changelist"), {"q": user.email.upper()})

    assert response.status_code == 200
    page = response.content.decode()
    assert user.email in page
    assert other_user.email not in page


def test_user_change_page_never_shows_the_password_hash(admin_client, user):
    response = admin_client.get(reverse("admin:accounts_user_change", args=[user.pk]))

    assert response.status_code == 200
    assert user.password not in response.content.decode()


def test_admin_creates_a_user_by_email_and_refuses_a_duplicate_in_another_case(admin_client, user):
    url = reverse("admin:accounts_user_add")
    fields = {"usable_password": "true", "password1": "a long and unusual passphrase"}
    fields["password2"] = fields["password1"]

    created = admin_client.post(url, {"email": "new.person@example.com", "full_name": "New", **fields})
    duplicate = admin_client.post(url, {"email": user.email.upper(), **fields})

    assert created.status_code == 302
    assert User.objects.get(email="new.person@example.com").check_password(fields["password1"])
    assert duplicate.status_code == 200
    assert "A user with this email already exists." in duplicate.content.decode()


def test_api_key_admin_lists_keys_without_secrets_and_revokes_through_the_service(
    admin_client, admin_user, user
):
    api_key, secret = api_key_create(user=user, name="server", actor=user)

    listing = admin_client.get(reverse("admin:accounts_apikey_changelist"))
    detail = admin_client.get(reverse("admin:accounts_apikey_change", args=[api_key.pk]))
    revoked = admin_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )

    assert listing.status_code == detail.status_code == 200
    for page in (listing, detail):
        assert secret not in page.content.decode()
        assert api_key.hashed_key not in page.content.decode()
    assert revoked.status_code == 302
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    audit = AuditLog.objects.get(action="api_key.revoked", entity_id=api_key.pk)
    assert audit.actor_id == admin_user.pk


def test_api_keys_cannot_be_added_or_deleted_in_the_admin(admin_client, user):
    api_key, _ = api_key_create(user=user, name="server", actor=user)

    assert admin_client.get(reverse("admin:accounts_apikey_add")).status_code == 403
    assert admin_client.get(reverse("admin:accounts_apikey_delete", args=[api_key.pk])).status_code == 403


def test_sessions_are_read_only(admin_client, user):
    session = auth_session_start(user=user).session

    detail = admin_client.get(reverse("admin:accounts_authsession_change", args=[session.pk]))
    edit = admin_client.post(
        reverse("admin:accounts_authsession_change", args=[session.pk]), {"revoked_reason": "edited"}
    )

    assert detail.status_code == 200
    assert edit.status_code == 403
    assert AuthSession.objects.get(pk=session.pk).revoked_reason == ""
    assert admin_client.get(reverse("admin:accounts_authsession_add")).status_code == 403


ADMIN_LOGIN = "/admin/login/"


def _admin_login(client, email, password, address):
    return client.post(
        ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"}, REMOTE_ADDR=address
    )


def test_admin_login_is_locked_per_address_after_repeated_failures_and_audited(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    for n in range(12):
        _admin_login(client, staff.email, f"guess {n}", "203.0.113.9")

    refused = _admin_login(client, staff.email, DEFAULT_PASSWORD, "203.0.113.9")

    assert refused.status_code == 200
    assert "Too many failed logins" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    failures = AuditLog.objects.filter(action="user.login_failed", entity_id=staff.id)
    assert [row.after for row in failures] == [{"reason": "wrong_password", "channel": "admin"}] * 5
    assert not AuditLog.objects.filter(action="user.logged_in").exists()

    elsewhere = Client()
    signed_in = _admin_login(elsewhere, staff.email, DEFAULT_PASSWORD, "198.51.100.4")

    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/admin/"
    assert elsewhere.session["_auth_user_id"] == staff.id
    success = AuditLog.objects.get(action="user.logged_in", entity_id=staff.id)
    assert (success.actor_id, success.after) == (staff.id, {"channel": "admin"})


def test_admin_login_shares_the_api_logins_counter(client, api_client, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    staff = UserFactory(is_staff=True)
    for _ in range(2):
        api_client.post("/api/v1/auth/login", {"email": staff.email, "password": "wrong guess"})

    refused = _admin_login(client, staff.email, DEFAULT_PASSWORD, "127.0.0.1")

    assert "Too many failed logins" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_customer_with_the_right_password_is_refused_by_the_admin_and_audited(client, user):
    response = _admin_login(client, user.email, DEFAULT_PASSWORD, "127.0.0.1")

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    audit = AuditLog.objects.get(action="user.login_failed", entity_id=user.id)
    assert audit.after == {"reason": "not_staff", "channel": "admin"}
