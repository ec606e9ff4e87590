"""Fixtures for the payments app's tests."""

import pytest

# `fake_stripe` is the root conftest's; named here too because apps/webhooks/tests/conftest.py
# imports it from this module (the same fixture, not a copy).
from conftest import fake_stripe  # noqa: F401


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
