import pytest
from django.urls import reverse

from apps.accounts.models import ApiKey, AuthSession, User
from apps.accounts.services import api_key_create, auth_session_start
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
