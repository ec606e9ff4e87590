import pytest
from django.urls import reverse

from apps.accounts.middleware import LAST_ACTIVITY

pytestmark = pytest.mark.django_db

INDEX = "/admin/"


def _idle(client, seconds: float) -> None:
    """Time travel: the session's last request happened `seconds` earlier than it did."""
    session = client.session
    session[LAST_ACTIVITY] -= seconds
    session.save()


def test_an_admin_session_idle_longer_than_the_limit_is_logged_out_to_the_login(admin_client, settings):
    settings.ADMIN_SESSION_IDLE_SECONDS = 60
    assert admin_client.get(INDEX).status_code == 200
    _idle(admin_client, 61)

    expired = admin_client.get("/admin/accounts/user/")

    assert expired.status_code == 302
    assert expired["Location"] == f"{reverse('admin:login')}?next=/admin/accounts/user/"
    assert "_auth_user_id" not in admin_client.session
    assert admin_client.get(INDEX).status_code == 302  # logged out for good, not for one request


def test_each_request_restarts_the_idle_clock(admin_client, settings):
    settings.ADMIN_SESSION_IDLE_SECONDS = 60
    admin_client.get(INDEX)
    _idle(admin_client, 50)
    assert admin_client.get(INDEX).status_code == 200
    _idle(admin_client, 50)

    assert admin_client.get(INDEX).status_code == 200
    assert "_auth_user_id" in admin_client.session


def test_the_default_idle_limit_is_fifteen_minutes(admin_client):
    admin_client.get(INDEX)
    _idle(admin_client, 14 * 60)
    assert admin_client.get(INDEX).status_code == 200
    _idle(admin_client, 15 * 60 + 1)

    assert admin_client.get(INDEX).status_code == 302
