"""Authentication reads the user from the cache, and every change to the user takes effect on the
very next request: the cached snapshot is forgotten when the change commits."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts import session_cache
from apps.accounts.models import ApiKey, CachedUserNotSaved, Roles, User
from apps.accounts.selectors import api_key_get_by_secret
from apps.accounts.services import api_key_create, api_key_revoke, auth_session_start, user_password_change
from apps.accounts.tests.factories import DEFAULT_PASSWORD

ME = "/api/v1/auth/me"

pytestmark = pytest.mark.django_db

UNREACHABLE_CACHE = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


def _review(client):
    """A reviewer's call: 404 for a payment that does not exist, 403 without the permission."""
    return client.put(
        f"/api/v1/payments/pay_{uuid.uuid4().hex}/review",
        {"decision": "approve", "note": "ok"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


def _cached(client) -> None:
    """A request that puts the caller's session and user in the cache."""
    assert client.get(ME).status_code == 200


def test_a_cached_request_reads_no_user_and_no_permission(client_for, staff_reviewer):
    client = client_for(staff_reviewer)
    _cached(client)

    with CaptureQueriesContext(connection) as me, CaptureQueriesContext(connection) as review:
        response = client.get(ME)
        me_count = len(me)
        # a permission check of a view (can the caller review?) is answered from the cache too
        assert _review(client).status_code == 404

    assert response.json()["roles"] == ["reviewer"]
    assert me_count == 0
    auth_tables = ("accounts_user", "auth_group", "auth_permission", "accounts_authsession")
    assert [q["sql"] for q in review.captured_queries if any(t in q["sql"] for t in auth_tables)] == []


def test_a_deactivated_user_is_refused_on_the_next_request(
    auth_client, user, django_capture_on_commit_callbacks
):
    _cached(auth_client)

    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()

    response = auth_client.get(ME)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_a_removed_role_takes_its_permission_away_on_the_next_request(
    client_for, staff_reviewer, django_capture_on_commit_callbacks
):
    client = client_for(staff_reviewer)
    _cached(client)
    assert _review(client).status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        staff_reviewer.groups.remove(Group.objects.get(name=Roles.REVIEWER))

    assert client.get(ME).json()["roles"] == []
    response = _review(client)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "review_permission_required"


def test_a_role_removed_from_the_groups_side_takes_effect_on_the_next_request(
    client_for, staff_reviewer, django_capture_on_commit_callbacks
):
    client = client_for(staff_reviewer)
    _cached(client)

    with django_capture_on_commit_callbacks(execute=True):
        Group.objects.get(name=Roles.REVIEWER).user_set.clear()

    assert client.get(ME).json()["roles"] == []
    assert _review(client).status_code == 403


def test_a_permission_taken_from_a_role_is_gone_on_the_next_request(
    client_for, staff_reviewer, django_capture_on_commit_callbacks
):
    client = client_for(staff_reviewer)
    _cached(client)
    assert _review(client).status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        Group.objects.get(name=Roles.REVIEWER).permissions.remove(
            Permission.objects.get(content_type__app_label="payments", codename="review_payment")
        )

    assert _review(client).status_code == 403


def test_a_permission_granted_to_the_user_works_on_the_next_request(
    auth_client, user, django_capture_on_commit_callbacks
):
    _cached(auth_client)
    assert _review(auth_client).status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="payments", codename="review_payment")
        )

    assert _review(auth_client).status_code == 404


def test_a_new_email_and_name_show_on_the_next_request(auth_client, user, django_capture_on_commit_callbacks):
    _cached(auth_client)

    with django_capture_on_commit_callbacks(execute=True):
        user.email = "renamed@example.com"
        user.full_name = "Renamed Person"
        user.save()

    body = auth_client.get(ME).json()
    assert (body["email"], body["full_name"]) == ("renamed@example.com", "Renamed Person")


def test_a_password_change_refuses_the_next_request(api_client, user, django_capture_on_commit_callbacks):
    access = auth_session_start(user=user).tokens.access
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    _cached(api_client)

    with django_capture_on_commit_callbacks(execute=True):
        user_password_change(
            user=user, current_password=DEFAULT_PASSWORD, new_password="a brand new passphrase"
        )

    assert api_client.get(ME).status_code == 401


def test_a_deleted_user_is_refused_on_the_next_request(auth_client, user, django_capture_on_commit_callbacks):
    _cached(auth_client)

    with django_capture_on_commit_callbacks(execute=True):
        User.objects.get(pk=user.pk).delete()

    assert auth_client.get(ME).status_code == 401


def test_a_user_read_just_before_a_change_committed_is_not_served_after_it(
    auth_client, user, monkeypatch, django_capture_on_commit_callbacks
):
    # A request misses the cache and reads the user; before it stores what it read, another
    # request deactivates the user and commits. What the first one stores must not be served.
    read_from_database = session_cache._user_in_database

    def read_then_deactivated_elsewhere(user_id):
        loaded = read_from_database(user_id)
        with django_capture_on_commit_callbacks(execute=True):
            deactivated = User.objects.get(pk=user_id)
            deactivated.is_active = False
            deactivated.save()
        return loaded

    monkeypatch.setattr(session_cache, "_user_in_database", read_then_deactivated_elsewhere)
    assert auth_client.get(ME).status_code == 200  # it was active when this request read it
    monkeypatch.undo()

    assert auth_client.get(ME).status_code == 401


def test_with_the_cache_down_a_deactivated_user_is_refused(auth_client, user, settings):
    _cached(auth_client)
    settings.CACHES = UNREACHABLE_CACHE  # ... and so the deactivation's invalidation is lost too
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert auth_client.get(ME).status_code == 401


def test_with_the_cache_down_the_user_is_read_from_the_database(auth_client, user, settings):
    settings.CACHES = UNREACHABLE_CACHE

    response = auth_client.get(ME)

    assert response.status_code == 200
    assert response.json()["roles"] == ["customer"]


def test_a_user_built_from_the_cache_cannot_be_saved_back(user):
    session = auth_session_start(user=user).session
    session_cache.session_user(session_id=session.id, user_id=user.id)  # caches the user
    cached = session_cache.session_user(session_id=session.id, user_id=user.id)
    assert cached is not None
    cached.full_name = "Overwritten"

    with pytest.raises(CachedUserNotSaved):
        cached.save()
    with pytest.raises(CachedUserNotSaved):
        cached.delete()

    user.refresh_from_db()
    assert user.full_name != "Overwritten"
    assert User.objects.filter(pk=user.pk).exists()


def test_a_user_built_from_the_cache_loads_what_it_does_not_hold(user):
    session = auth_session_start(user=user).session
    session_cache.session_user(session_id=session.id, user_id=user.id)

    cached = session_cache.session_user(session_id=session.id, user_id=user.id)

    assert cached is not None
    assert cached.check_password(DEFAULT_PASSWORD)  # deferred, not blank
    assert cached.date_joined == user.date_joined


def test_a_snapshot_of_another_format_is_ignored(auth_client, user):
    _cached(auth_client)
    cache.set(f"accounts:user-snapshot:{user.id}", {"fields": ["x"]})

    response = auth_client.get(ME)

    assert response.status_code == 200
    assert response.json()["email"] == user.email


# --- API keys -----------------------------------------------------------------------------------


def test_a_cached_api_key_request_costs_no_query(api_key_client, user, django_assert_num_queries):
    _cached(api_key_client)  # reads the key and the user, records the key's first use

    with django_assert_num_queries(0):
        response = api_key_client.get(ME)

    assert response.status_code == 200
    assert response.json()["id"] == user.id
    assert user.api_keys.get().last_used_at is not None


def test_a_revoked_api_key_is_refused_on_the_next_request(
    api_key_client, user, django_capture_on_commit_callbacks
):
    _cached(api_key_client)

    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(api_key=user.api_keys.get(), actor=user)

    response = api_key_client.get(ME)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_an_api_key_of_a_deactivated_user_is_refused_on_the_next_request(
    api_key_client, user, django_capture_on_commit_callbacks
):
    _cached(api_key_client)

    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()

    assert api_key_client.get(ME).status_code == 401


def test_a_cached_api_key_of_a_reviewer_still_acts_as_a_customer_only(api_key_client_for, staff_reviewer):
    client = api_key_client_for(staff_reviewer)
    _cached(client)

    response = _review(client)

    assert response.status_code == 403


def test_a_cached_api_key_records_its_use_again_after_a_minute(api_key_client, user, monkeypatch):
    _cached(api_key_client)
    api_key = user.api_keys.get()
    first_use = api_key.last_used_at
    later = first_use + timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    cache.delete(f"accounts:api-key-used:{api_key.id}")  # the minute's marker has expired by then

    assert api_key_client.get(ME).status_code == 200

    api_key.refresh_from_db()
    assert api_key.last_used_at == later


def test_with_the_cache_down_a_revoked_api_key_is_refused(api_key_client, user, settings):
    _cached(api_key_client)
    settings.CACHES = UNREACHABLE_CACHE  # ... and so the revocation's invalidation is lost too
    ApiKey.objects.filter(user=user).update(revoked_at=timezone.now())

    assert api_key_client.get(ME).status_code == 401


def test_an_api_key_built_from_the_cache_cannot_be_saved_back(api_key_client_for, user):
    _, secret = api_key_create(user=user, name="cached", actor=user)
    api_key_get_by_secret(secret=secret, cached=True)  # caches the key
    cached = api_key_get_by_secret(secret=secret, cached=True)
    assert cached is not None
    cached.name = "Overwritten"

    with pytest.raises(CachedUserNotSaved):
        cached.save()
    with pytest.raises(CachedUserNotSaved):
        cached.user.save()
    assert ApiKey.objects.get(pk=cached.pk).name == "cached"
