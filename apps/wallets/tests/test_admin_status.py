"""Freezing and unfreezing one wallet from its admin page: a note first, then the service."""

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditLog
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
