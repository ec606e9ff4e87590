import pytest
from django.test import Client

from apps.audit.models import AuditLog
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import wallet_deposit_start
from apps.wallets.tests.factories import UserFactory, WalletFactory


@pytest.fixture
def staff_client():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db
def test_staff_freeze_a_wallet_from_the_admin_after_giving_a_note(staff_client):
    wallet = WalletFactory()
    url = "/admin/wallets/wallet/"

    asked = staff_client.post(url, {"action": "freeze", "_selected_action": [wallet.pk]})
    assert asked.status_code == 200
    assert b"Say why" in asked.content
    assert Wallet.objects.get(pk=wallet.pk).status == "active"

    done = staff_client.post(
        url, {"action": "freeze", "_selected_action": [wallet.pk], "apply": "1", "note": "chargeback ring"}
    )

    assert done.status_code == 302
    assert Wallet.objects.get(pk=wallet.pk).status == "frozen"
    assert (
        AuditLog.objects.get(action="wallet.freeze", entity_id=wallet.pk).after["note"] == "chargeback ring"
    )


@pytest.mark.django_db
def test_wallets_and_transactions_cannot_be_edited_or_deleted_in_the_admin(staff_client):
    wallet = WalletFactory()

    page = staff_client.get(f"/admin/wallets/wallet/{wallet.pk}/change/")
    staff_client.post(f"/admin/wallets/wallet/{wallet.pk}/change/", {"balance": 1_000_000})

    assert page.status_code == 200
    assert b'name="balance"' not in page.content
    assert staff_client.get(f"/admin/wallets/wallet/{wallet.pk}/delete/").status_code == 403
    assert Wallet.objects.get(pk=wallet.pk).balance == 0


@pytest.mark.django_db
def test_a_pending_deposits_card_token_is_not_shown_in_the_admin(staff_client):
    wallet = WalletFactory()
    txn = wallet_deposit_start(
        actor=None, user=wallet.user, wallet_id=wallet.pk, amount=900, payment_method="tok_secretVisa4242"
    )
    assert Transaction.objects.get(pk=txn.pk).payment_method_token == "tok_secretVisa4242"

    page = staff_client.get(f"/admin/wallets/transaction/{txn.pk}/change/")
    listing = staff_client.get("/admin/wallets/transaction/")

    assert page.status_code == listing.status_code == 200
    assert txn.pk.encode() in page.content
    for content in (page.content, listing.content):
        assert b"tok_secretVisa4242" not in content
        assert b"payment_method_token" not in content
        assert b"Payment method token" not in content
