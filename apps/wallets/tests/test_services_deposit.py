import pytest
from django.db import transaction

from apps.core.models import OutboxEvent
from apps.gateways.base import GatewayResult
from apps.gateways.models import SimulatedCharge
from apps.wallets.models import Transaction
from apps.wallets.services import wallet_deposit, wallet_deposit_settle, wallet_deposit_start
from apps.wallets.tests.factories import WalletFactory


@pytest.mark.django_db
def test_settling_a_deposit_twice_credits_it_once():
    wallet = WalletFactory()
    txn = wallet_deposit_start(actor=None, user=wallet.user, wallet_id=wallet.pk, amount=300)
    charged = GatewayResult(status="captured", reference="ch_1", amount=300, currency="USD")

    wallet_deposit_settle(actor=None, transaction_id=txn.pk, result=charged)
    late = wallet_deposit_settle(actor=None, transaction_id=txn.pk, result=charged)
    declined_late = wallet_deposit_settle(
        actor=None, transaction_id=txn.pk, result=GatewayResult(status="failed", failure_code="card_declined")
    )

    wallet.refresh_from_db()
    assert wallet.balance == 300
    assert (late.status, declined_late.status) == ("completed", "completed")
    assert OutboxEvent.objects.filter(event_type="wallet.funds_added", aggregate_id=wallet.pk).count() == 1


@pytest.mark.django_db
def test_a_failed_deposit_announces_transaction_failed():
    wallet = WalletFactory()
    txn = wallet_deposit_start(actor=None, user=wallet.user, wallet_id=wallet.pk, amount=300)

    wallet_deposit_settle(
        actor=None,
        transaction_id=txn.pk,
        result=GatewayResult(status="failed", failure_code="card_declined", failure_message="Declined."),
    )

    event = OutboxEvent.objects.get(event_type="transaction.failed", aggregate_id=txn.pk)
    assert event.payload["failure_code"] == "card_declined"
    assert Transaction.objects.get(pk=txn.pk).failure_message == "Declined."


@pytest.mark.django_db(transaction=True)
def test_a_deposit_cannot_run_inside_a_transaction_so_the_gateway_is_never_called_in_one():
    wallet = WalletFactory()

    with pytest.raises(RuntimeError), transaction.atomic():
        wallet_deposit(
            actor=None, user=wallet.user, wallet_id=wallet.pk, amount=100, payment_method="tok_visa"
        )

    assert not SimulatedCharge.objects.exists()
    assert not Transaction.objects.exists()
