"""Fixtures for the payments app's tests."""

import pytest

from tests.fakes.stripe_server import FakeStripe


@pytest.fixture
def fake_stripe(settings):
    """A Stripe look-alike on a free local port; STRIPE_API_KEY and STRIPE_API_BASE point at it."""
    with FakeStripe() as server:
        settings.STRIPE_API_KEY = server.api_key
        settings.STRIPE_API_BASE = server.url
        yield server


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
