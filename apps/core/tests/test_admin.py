"""Dead letters in the admin: listed read-only, replayed once through `dead_letter_replay`."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.accounts.tests.factories import UserFactory
from apps.core.dead_letters import dead_letter_record, replayer
from apps.core.models import DeadLetter

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:core_deadletter_changelist")
replayed_references = []


@replayer("backoffice_admin_test")
def _replay(letter: DeadLetter) -> None:
    if letter.payload.get("broken"):
        raise RuntimeError("the gateway still says no")
    replayed_references.append(letter.reference)


def letter(reference, **payload):
    return dead_letter_record(
        kind="backoffice_admin_test", reference=reference, reason="gave up", payload=payload, attempts=5
    )


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def test_staff_replay_dead_letters_once_and_see_what_failed(admin_client):
    good, broken = letter("pay_good"), letter("pay_broken", broken=True)
    replay = {"action": "replay", "_selected_action": [good.pk, broken.pk]}

    first = admin_client.post(LIST_URL, replay, follow=True)
    second = admin_client.post(LIST_URL, replay, follow=True)

    assert replayed_references.count("pay_good") == 1
    assert any("Replayed 1" in text for text in messages_of(first))
    assert any("the gateway still says no" in text for text in messages_of(first))
    assert any("Skipped 2" in text for text in messages_of(second))
    broken.refresh_from_db()
    assert broken.replay_error == "the gateway still says no"
    listing = admin_client.get(LIST_URL).content.decode()
    assert "failed: the gateway still says no" in listing


def test_dead_letters_are_read_only_and_replay_needs_the_change_permission(admin_client):
    row = letter("pay_kept")
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="core", codename="view_deadletter")
    )
    viewer_client = Client()
    viewer_client.force_login(viewer)

    edit = admin_client.post(reverse("admin:core_deadletter_change", args=[row.pk]), {"reason": "x"})
    listing = viewer_client.get(LIST_URL)
    viewer_client.post(LIST_URL, {"action": "replay", "_selected_action": [row.pk]})

    assert edit.status_code == 403
    assert admin_client.get(reverse("admin:core_deadletter_add")).status_code == 403
    assert listing.status_code == 200
    assert 'value="replay"' not in listing.content.decode()
    row.refresh_from_db()
    assert row.replayed_at is None
    assert "pay_kept" not in replayed_references
