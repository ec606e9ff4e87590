import pytest

from apps.audit.models import AuditLog
from apps.core.errors import ApplicationError
from apps.core.models import OutboxEvent
from apps.ledger.selectors import ledger_account_balance
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import wallet_freeze, wallet_transfer
from apps.wallets.tests.conftest import money_state
from apps.wallets.tests.factories import UserFactory, WalletFactory, fund


@pytest.fixture
def pair():
    source, destination = WalletFactory(), WalletFactory()
    fund(source, 1_000)
    return source, destination


def _transfer(source, destination, amount, **kwargs):
    return wallet_transfer(
        actor=source.user,
        user=kwargs.pop("user", source.user),
        source_wallet_id=source.pk,
        destination_wallet_id=destination.pk,
        amount=amount,
        **kwargs,
    )


@pytest.mark.django_db
def test_a_transfer_moves_money_with_one_balanced_entry_events_and_an_audit_row(pair):
    source, destination = pair

    txn = _transfer(source, destination, 300, description="rent")

    source.refresh_from_db()
    destination.refresh_from_db()
    assert (source.balance, destination.balance) == (700, 300)
    assert ledger_account_balance(account=source.ledger_account) == 700
    assert ledger_account_balance(account=destination.ledger_account) == 300
    assert (txn.type, txn.status, txn.amount, txn.currency, txn.description) == (
        "transfer",
        "completed",
        300,
        "USD",
        "rent",
    )
    postings = dict(txn.journal_entry.postings.values_list("account_id", "amount"))
    assert postings == {source.ledger_account_id: -300, destination.ledger_account_id: 300}
    events = dict(
        OutboxEvent.objects.filter(event_type__in=["wallet.funds_deducted", "wallet.funds_added"])
        .filter(payload__transaction=txn.pk)
        .values_list("event_type", "payload__balance")
    )
    assert events == {"wallet.funds_deducted": 700, "wallet.funds_added": 300}
    assert OutboxEvent.objects.filter(event_type="transaction.completed", aggregate_id=txn.pk).exists()
    audit = AuditLog.objects.get(action="wallet.transfer", entity_id=txn.pk)
    assert audit.after["source_balance"] == 700
    assert audit.actor_id == source.user.pk


@pytest.mark.django_db
def test_the_whole_balance_can_be_sent(pair):
    source, destination = pair

    _transfer(source, destination, 1_000)

    assert Wallet.objects.get(pk=source.pk).balance == 0


def _frozen_destination(source, destination):
    wallet_freeze(
        actor=UserFactory(is_staff=True, is_superuser=True), wallet_id=destination.pk, note="chargeback fraud"
    )
    return source, destination


def _frozen_source(source, destination):
    wallet_freeze(actor=UserFactory(is_staff=True, is_superuser=True), wallet_id=source.pk, note="kyc")
    return source, destination


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arrange", "amount", "code", "param"),
    [
        (lambda s, d: (s, s), 10, "same_wallet", "destination_wallet"),
        (lambda s, d: (s, WalletFactory(currency="EUR")), 10, "currency_mismatch", "destination_wallet"),
        (_frozen_source, 10, "wallet_inactive", "source_wallet"),
        (_frozen_destination, 10, "wallet_inactive", "destination_wallet"),
        (lambda s, d: (s, d), 1_001, "insufficient_funds", "amount"),
        (lambda s, d: (d, s), 1, "insufficient_funds", "amount"),
    ],
    ids=["same-wallet", "currency-mismatch", "frozen-source", "frozen-destination", "overdraw", "empty"],
)
def test_a_refused_transfer_moves_nothing(pair, arrange, amount, code, param):
    source, destination = arrange(*pair)
    before = money_state()

    with pytest.raises(ApplicationError) as refused:
        _transfer(source, destination, amount)

    assert (refused.value.status_code, refused.value.code, refused.value.param) == (400, code, param)
    assert money_state() == before


@pytest.mark.django_db
def test_another_users_wallet_cannot_be_the_source(pair):
    source, destination = pair
    before = money_state()

    with pytest.raises(ApplicationError) as refused:
        _transfer(source, destination, 10, user=destination.user)

    assert (refused.value.status_code, refused.value.code, refused.value.param) == (
        404,
        "resource_missing",
        "source_wallet",
    )
    assert money_state() == before


@pytest.mark.django_db
def test_an_unknown_destination_is_a_404(pair):
    source, _ = pair

    with pytest.raises(ApplicationError) as refused:
        wallet_transfer(
            actor=None,
            user=source.user,
            source_wallet_id=source.pk,
            destination_wallet_id="wal_nope",
            amount=1,
        )

    assert (refused.value.status_code, refused.value.param) == (404, "destination_wallet")
    assert not Transaction.objects.filter(type="transfer").exists()
