"""Factories for wallets and their owners, plus `fund` to put money in a wallet the real way."""

from __future__ import annotations

import factory

from apps.accounts.models import User
from apps.gateways.base import GatewayResult
from apps.ledger.models import LedgerAccount
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import wallet_deposit_settle, wallet_deposit_start


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"wallet-owner-{n}@example.com")
    password = factory.django.Password("correct horse battery")


class WalletAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LedgerAccount

    kind = LedgerAccount.Kind.WALLET
    currency = "USD"


class WalletFactory(factory.django.DjangoModelFactory):
    """An empty wallet; use `fund` for money, so the ledger and the cached balance agree."""

    class Meta:
        model = Wallet

    user = factory.SubFactory(UserFactory)
    currency = "USD"
    ledger_account = factory.SubFactory(WalletAccountFactory, currency=factory.SelfAttribute("..currency"))


def fund(wallet: Wallet, amount: int) -> Transaction:
    """A completed card deposit through the deposit services, without calling a gateway."""
    txn = wallet_deposit_start(actor=None, user=wallet.user, wallet_id=wallet.pk, amount=amount)
    result = GatewayResult(
        status="captured", reference=f"ch_{txn.pk}", amount=amount, currency=wallet.currency
    )
    txn = wallet_deposit_settle(actor=None, transaction_id=txn.pk, result=result)
    wallet.refresh_from_db()
    return txn
