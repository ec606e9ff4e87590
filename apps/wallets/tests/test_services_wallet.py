import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connection

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory as RoleUserFactory
from apps.audit.models import AuditLog
from apps.core.errors import ApplicationError
from apps.core.models import OutboxEvent
from apps.ledger.models import LedgerAccount
from apps.wallets.models import Wallet
from apps.wallets.selectors import wallets_of_user
from apps.wallets.services import wallet_create, wallet_freeze, wallet_unfreeze
from apps.wallets.tests.factories import UserFactory, WalletFactory


@pytest.mark.django_db
def test_a_new_wallet_has_its_own_ledger_account_an_event_and_an_audit_row():
    user = UserFactory()

    wallet = wallet_create(actor=user, user=user, currency="EUR")

    assert (wallet.balance, wallet.status, wallet.currency) == (0, "active", "EUR")
    assert (wallet.ledger_account.kind, wallet.ledger_account.currency) == ("wallet", "EUR")
    assert OutboxEvent.objects.get(event_type="wallet.created").payload == {
        "wallet": wallet.pk,
        "user": user.pk,
        "currency": "EUR",
    }
    assert AuditLog.objects.filter(action="wallet.create", entity_id=wallet.pk, actor_id=user.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_racing_creations_of_the_same_currency_end_with_one_wallet_and_409s():
    user = UserFactory()
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def create() -> None:
        try:
            barrier.wait()
            wallet_create(actor=user, user=user, currency="USD")
            outcomes.append("created")
        except ApplicationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created"] + ["wallet_exists"] * 5
    assert Wallet.objects.filter(user=user).count() == 1
    # The losers' ledger accounts rolled back with them.
    assert LedgerAccount.objects.filter(kind="wallet").count() == 1


@pytest.mark.django_db
def test_staff_freeze_and_unfreeze_a_wallet_with_a_note_in_the_audit_trail():
    wallet, staff = WalletFactory(), UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="freeze_wallet"))

    wallet_freeze(actor=staff, wallet_id=wallet.pk, note="suspected account takeover")
    assert Wallet.objects.get(pk=wallet.pk).status == "frozen"
    wallet_unfreeze(actor=staff, wallet_id=wallet.pk, note="customer verified")

    assert Wallet.objects.get(pk=wallet.pk).status == "active"
    audit = list(AuditLog.objects.filter(entity_id=wallet.pk).order_by("id").values_list("action", "after"))
    assert audit == [
        ("wallet.freeze", {"status": "frozen", "note": "suspected account takeover"}),
        ("wallet.unfreeze", {"status": "active", "note": "customer verified"}),
    ]
    events = OutboxEvent.objects.filter(aggregate_id=wallet.pk).order_by("created_at")
    assert [e.event_type for e in events] == ["wallet.frozen", "wallet.unfrozen"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("actor", "note", "code"),
    [
        (lambda: UserFactory(), "fraud", "permission_denied"),
        (lambda: UserFactory(is_staff=True), "fraud", "permission_denied"),
        (lambda: RoleUserFactory(is_staff=True, roles=[Roles.REVIEWER]), "fraud", "permission_denied"),
        (lambda: UserFactory(is_staff=True, is_superuser=True), "  ", "parameter_missing"),
    ],
    ids=["not-staff", "staff-without-freeze_wallet", "reviewer-role", "no-note"],
)
def test_freezing_needs_staff_and_a_note(actor, note, code):
    wallet = WalletFactory()

    with pytest.raises(ApplicationError) as refused:
        wallet_freeze(actor=actor(), wallet_id=wallet.pk, note=note)

    assert refused.value.code == code
    assert Wallet.objects.get(pk=wallet.pk).status == "active"
    assert not AuditLog.objects.filter(entity_id=wallet.pk).exists()


@pytest.mark.django_db
def test_wallets_of_user_lists_only_that_users_wallets_by_currency():
    user, other = UserFactory(), UserFactory()
    usd = wallet_create(actor=user, user=user, currency="USD")
    eur = wallet_create(actor=user, user=user, currency="EUR")
    wallet_create(actor=other, user=other, currency="GBP")

    assert list(wallets_of_user(user_id=user.pk)) == [eur, usd]


@pytest.mark.django_db
def test_unfreezing_needs_the_freeze_wallet_permission_too():
    wallet = WalletFactory(status="frozen")
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_wallet"))

    with pytest.raises(ApplicationError) as refused:
        wallet_unfreeze(actor=viewer, wallet_id=wallet.pk, note="let it go")

    assert refused.value.code == "permission_denied"
    assert Wallet.objects.get(pk=wallet.pk).status == "frozen"
    assert not AuditLog.objects.filter(entity_id=wallet.pk).exists()
    assert not OutboxEvent.objects.filter(aggregate_id=wallet.pk).exists()
