"""Freezing and unfreezing one wallet from its admin page: a note first, then the service."""

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory as RoleUserFactory
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.wallets.models import Wallet
from apps.wallets.tests.factories import UserFactory, WalletFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_wallet_page_freezes_then_unfreezes_with_a_note_each_time(staff_client):
    wallet = WalletFactory()
    page_url = reverse("admin:wallets_wallet_change", args=[quote(wallet.pk)])
    freeze_url = reverse("admin:wallets_wallet_status", args=[quote(wallet.pk), "freeze"])
    unfreeze_url = reverse("admin:wallets_wallet_status", args=[quote(wallet.pk), "unfreeze"])

    before = staff_client.get(page_url).content.decode()
    without_note = staff_client.post(freeze_url, {"note": ""})
    frozen = staff_client.post(freeze_url, {"note": "chargeback ring"})
    after = staff_client.get(page_url).content.decode()
    staff_client.post(unfreeze_url, {"note": "cleared by the bank"})

    assert freeze_url in before
    assert without_note.status_code == 200
    assert "This field is required." in without_note.content.decode()
    assert frozen.status_code == 302
    assert unfreeze_url in after
    assert Wallet.objects.get(pk=wallet.pk).status == Wallet.Status.ACTIVE
    notes = list(
        AuditLog.objects.filter(entity_id=wallet.pk).order_by("id").values_list("action", "after__note")
    )
    assert notes == [("wallet.freeze", "chargeback ring"), ("wallet.unfreeze", "cleared by the bank")]


def test_an_unknown_status_action_is_a_404(staff_client):
    wallet = WalletFactory()

    response = staff_client.post(
        reverse("admin:wallets_wallet_status", args=[quote(wallet.pk), "delete"]), {"note": "x"}
    )

    assert response.status_code == 404
    assert Wallet.objects.get(pk=wallet.pk).status == Wallet.Status.ACTIVE


@pytest.fixture
def viewer_client():
    """Staff who may view wallets (`wallets.view_wallet`) but not freeze them."""
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_wallet"))
    client = Client()
    client.force_login(viewer)
    return client


def test_staff_with_only_view_wallet_can_neither_freeze_nor_unfreeze(viewer_client):
    active, frozen = WalletFactory(), WalletFactory(status=Wallet.Status.FROZEN)
    changelist = reverse("admin:wallets_wallet_changelist")

    page = viewer_client.get(reverse("admin:wallets_wallet_change", args=[quote(active.pk)]))
    listing = viewer_client.get(changelist)
    by_button = viewer_client.post(
        reverse("admin:wallets_wallet_status", args=[quote(active.pk), "freeze"]), {"note": "x"}
    )
    by_button_unfreeze = viewer_client.post(
        reverse("admin:wallets_wallet_status", args=[quote(frozen.pk), "unfreeze"]), {"note": "x"}
    )
    by_action = viewer_client.post(
        changelist, {"action": "freeze", "_selected_action": [active.pk], "apply": "1", "note": "fraud"}
    )
    by_action_unfreeze = viewer_client.post(
        changelist, {"action": "unfreeze", "_selected_action": [frozen.pk], "apply": "1", "note": "ok"}
    )

    assert page.status_code == 200
    assert "/status/freeze/" not in page.content.decode()
    assert "Freeze selected" not in listing.content.decode()
    assert "Unfreeze selected" not in listing.content.decode()
    assert by_button.status_code == 403
    assert by_button_unfreeze.status_code == 403
    # An action the user may not run is not offered; Django answers the list with "no action".
    assert by_action.status_code in (200, 302)
    assert by_action_unfreeze.status_code in (200, 302)
    assert Wallet.objects.get(pk=active.pk).status == Wallet.Status.ACTIVE
    assert Wallet.objects.get(pk=frozen.pk).status == Wallet.Status.FROZEN
    assert not AuditLog.objects.filter(entity_id__in=[active.pk, frozen.pk]).exists()
    assert not OutboxEvent.objects.filter(aggregate_id__in=[active.pk, frozen.pk]).exists()


def test_staff_with_freeze_wallet_freezes_from_the_admin_action():
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_wallet", "freeze_wallet"]))
    client = Client()
    client.force_login(staff)
    wallet = WalletFactory()

    client.post(
        reverse("admin:wallets_wallet_changelist"),
        {"action": "freeze", "_selected_action": [wallet.pk], "apply": "1", "note": "chargeback ring"},
    )

    assert Wallet.objects.get(pk=wallet.pk).status == Wallet.Status.FROZEN
    assert AuditLog.objects.filter(entity_id=wallet.pk, action="wallet.freeze", actor_id=staff.pk).exists()


def test_the_reviewer_role_does_not_carry_freeze_wallet():
    reviewer = RoleUserFactory(is_staff=True, roles=[Roles.REVIEWER])
    admin_role = RoleUserFactory(is_staff=True, roles=[Roles.ADMIN])

    assert reviewer.has_perm("wallets.view_wallet")
    assert not reviewer.has_perm("wallets.freeze_wallet")
    assert admin_role.has_perm("wallets.freeze_wallet")
