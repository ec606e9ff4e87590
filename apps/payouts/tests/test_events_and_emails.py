"""A payout's events reach its owner through the events API with the payout as the API returns it,
and its owner is emailed when it is paid or fails."""

import pytest
from django.core import mail

from apps.payouts.tests.conftest import create

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_paid_payout_is_public_events_carrying_the_payout(owner_client, other_client, wallet):
    mail.outbox = []
    payout = create(owner_client, wallet, amount=1_200, key="po-1").json()

    events = owner_client.get("/api/v1/events?type=payout.paid").json()["data"]
    every = [
        e["type"]
        for e in owner_client.get("/api/v1/events").json()["data"]
        if e["type"].startswith("payout.")
    ]

    assert every == ["payout.paid", "payout.in_transit", "payout.created"]
    (paid,) = events
    assert paid["data"]["object"] == owner_client.get(f"/api/v1/payouts/{payout['id']}").json()
    assert paid["data"]["object"]["destination"] == {"type": "bank_account", "last4": "6789"}
    assert "btok_success" not in str(paid)  # the destination token never leaves
    created = owner_client.get("/api/v1/events?type=payout.created").json()["data"][0]
    assert created["data"]["object"]["status"] == "pending"  # its state as of the event
    assert created["request"]["idempotency_key"] == "po-1"
    assert other_client.get("/api/v1/events?type=payout.paid").json()["data"] == []
    assert [m.subject for m in mail.outbox if "payout" in m.subject.lower()] == [
        "Your payout of 12.00 USD has been paid"
    ]
    assert mail.outbox[-1].to == [wallet.user.email]


def test_a_failed_payout_emails_its_owner_that_the_money_is_back(owner_client, wallet):
    mail.outbox = []

    create(owner_client, wallet, amount=800, destination="btok_accountClosed")

    (email,) = [m for m in mail.outbox if "payout" in m.subject.lower()]
    assert email.subject == "Your payout of 8.00 USD did not go through"
    assert "account_closed" in email.body
    assert "back in your wallet" in email.body
    failed = owner_client.get("/api/v1/events?type=payout.failed").json()["data"][0]
    assert (failed["data"]["object"]["status"], failed["data"]["object"]["failure_code"]) == (
        "failed",
        "account_closed",
    )
