"""Fixtures for subscription tests: subscriptions made and billed through the real services."""

from datetime import datetime
from io import StringIO

import pytest
from django.core.management import call_command

from apps.subscriptions.models import Subscription
from apps.subscriptions.services import subscription_create


@pytest.fixture
def subscribe(user):
    """`subscribe(now=..., **fields)`: a subscription of `user` (tok_visa, 1500 USD cents a month)."""

    def make(*, now: datetime, owner=None, **fields) -> Subscription:
        owner = owner or user
        values = {
            "plan_id": "pro",
            "amount": 1500,
            "currency": "USD",
            "billing_cycle": "monthly",
            "payment_method": "tok_visa",
            **fields,
        }
        return subscription_create(actor=owner, owner=owner, now=now, **values)

    return make


@pytest.fixture
def bill():
    """`bill(as_of)`: `manage.py bill_subscriptions --as-of <as_of>`; returns its stdout."""

    def run(as_of: datetime, *extra: str) -> str:
        out, err = StringIO(), StringIO()
        call_command("bill_subscriptions", "--as-of", as_of.isoformat(), *extra, stdout=out, stderr=err)
        return out.getvalue()

    return run


@pytest.fixture
def funded_wallet(user):
    """`funded_wallet(amount, currency="USD")`: a wallet of `user` holding `amount`, deposited by card."""
    from apps.wallets.services import wallet_create, wallet_deposit

    def make(amount: int, currency: str = "USD"):
        wallet = wallet_create(actor=user, user=user, currency=currency)
        wallet_deposit(actor=user, user=user, wallet_id=wallet.pk, amount=amount, payment_method="tok_visa")
        wallet.refresh_from_db()
        return wallet

    return make
