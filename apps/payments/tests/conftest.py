"""Fixtures for the payments app's tests."""

import pytest


@pytest.fixture
def funded_wallet(user):
    """`funded_wallet(amount, currency="USD", owner=user)`: a wallet holding `amount`, deposited by card."""
    from apps.wallets.services import wallet_create, wallet_deposit

    def make(amount: int, currency: str = "USD", owner=None):
        owner = owner or user
        wallet = wallet_create(actor=owner, user=owner, currency=currency)
        wallet_deposit(actor=owner, user=owner, wallet_id=wallet.pk, amount=amount, payment_method="tok_visa")
        wallet.refresh_from_db()
        return wallet

    return make
