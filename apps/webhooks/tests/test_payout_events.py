"""Stripe's payout webhooks settle our payouts: `payout.paid` books the payout to the gateway's clearing
account, `payout.failed` puts the amount back into the wallet with Stripe's failure_code, each exactly
once however often Stripe delivers it; news that contradicts the books goes to a person (dead letter).
Payouts are made through the API and the worker on the Stripe gateway (the fake Stripe server)."""

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.core.models import DeadLetter, OutboxEvent
from apps.ledger.selectors import ledger_system_account_balances
from apps.payouts.models import Payout
from apps.payouts.tests.conftest import create, money_state
from apps.wallets.tests.factories import WalletFactory, fund
from apps.webhooks.models import WebhookEvent
from apps.webhooks.tests.factories import received, stripe_event

pytestmark = pytest.mark.django_db(transaction=True)
S = WebhookEvent.Status


@pytest.fixture
def wallet(fake_stripe, settings):
    settings.PAYMENT_GATEWAY = "stripe"
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    wallet = WalletFactory()
    fund(wallet, 10_000)
    return wallet


@pytest.fixture
def owner(wallet):
    client = APIClient()
    client.force_authenticate(user=wallet.user)
    return client


def _payout(owner, wallet, fake_stripe, *, bank="us_verified", amount=2_500, key="k1"):
    """A payout in transit at Stripe, and the Stripe Payout once its bank settled it."""
    response = create(owner, wallet, amount=amount, destination=f"btok_{bank}", key=key)
    assert response.status_code == 201, response.json()
    payout = Payout.objects.get(pk=response.json()["id"])
    assert payout.status == "in_transit"
    return payout, fake_stripe.settle_payout(payout.gateway_reference)


def test_payout_paid_delivered_twice_settles_the_payout_once(owner, wallet, fake_stripe, deliver):
    payout, stripe_payout = _payout(owner, wallet, fake_stripe)
    event = stripe_event("payout.paid", stripe_payout)

    first = received(deliver.stripe(event))
    settled = money_state()
    again = deliver.stripe(event)  # Stripe delivers it again
    repeat = received(deliver.stripe(stripe_event("payout.paid", stripe_payout)))  # a second event, same news

    assert (first.status, first.outcome) == (S.PROCESSED, f"{payout.pk}: in_transit -> paid")
    assert again.json()["id"] == first.pk
    assert (repeat.status, repeat.outcome) == (S.IGNORED, f"{payout.pk} is already paid")
    assert money_state() == settled
    shown = owner.get(f"/api/v1/payouts/{payout.pk}").json()
    assert (shown["status"], shown["failure_code"]) == ("paid", None)
    assert owner.get(f"/api/v1/wallets/{wallet.pk}").json()["balance"] == 7_500
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}
    assert OutboxEvent.objects.filter(event_type="payout.paid", aggregate_id=payout.pk).count() == 1
    call_command("verify_ledger", stdout=io.StringIO())


def test_payout_failed_puts_the_money_back_with_stripes_failure_code_once(
    owner, wallet, fake_stripe, deliver
):
    payout, stripe_payout = _payout(owner, wallet, fake_stripe, bank="us_verified_accountClosed")
    assert stripe_payout["failure_code"] == "account_closed"
    event = stripe_event("payout.failed", stripe_payout)

    first = received(deliver.stripe(event))
    settled = money_state()
    received(deliver.stripe(stripe_event("payout.failed", stripe_payout)))

    assert (first.status, first.outcome) == (S.PROCESSED, f"{payout.pk}: in_transit -> failed")
    assert money_state() == settled
    shown = owner.get(f"/api/v1/payouts/{payout.pk}").json()
    assert (shown["status"], shown["failure_code"]) == ("failed", "account_closed")
    assert owner.get(f"/api/v1/wallets/{wallet.pk}").json()["balance"] == 10_000
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}
    assert OutboxEvent.objects.filter(event_type="payout.failed", aggregate_id=payout.pk).count() == 1
    call_command("verify_ledger", stdout=io.StringIO())


def test_payout_failed_after_it_was_paid_goes_to_a_person_and_moves_nothing(
    owner, wallet, fake_stripe, deliver
):
    payout, stripe_payout = _payout(owner, wallet, fake_stripe)
    received(deliver.stripe(stripe_event("payout.paid", stripe_payout)))
    settled = money_state()

    late = {**stripe_payout, "status": "failed", "failure_code": "account_closed"}
    event = received(deliver.stripe(stripe_event("payout.failed", late)))

    assert event.status == S.DEAD
    assert "is paid at Paydesk but the gateway reports" in event.last_error
    assert DeadLetter.objects.filter(reference=event.pk).exists()
    assert money_state()["balances"] == settled["balances"]
    assert Payout.objects.get(pk=payout.pk).status == "paid"


def test_a_payout_event_of_a_payout_not_ours_is_ignored(wallet, fake_stripe, deliver):
    foreign = {
        "id": "po_platform",
        "object": "payout",
        "amount": 900,
        "currency": "usd",
        "status": "paid",
        "metadata": {},
    }

    event = received(deliver.stripe(stripe_event("payout.paid", foreign)))

    assert (event.status, event.outcome) == (
        S.IGNORED,
        "gateway payout po_platform is not one of Paydesk's payouts",
    )


def test_a_payout_event_with_another_amount_is_refused(owner, wallet, fake_stripe, deliver):
    payout, stripe_payout = _payout(owner, wallet, fake_stripe)

    event = received(deliver.stripe(stripe_event("payout.paid", {**stripe_payout, "amount": 9_999})))

    assert event.status == S.DEAD
    assert Payout.objects.get(pk=payout.pk).status == "in_transit"


def test_payout_paid_settles_a_payout_whose_answer_was_lost_by_the_key_in_its_metadata(
    owner, wallet, fake_stripe, deliver
):
    bank_account = fake_stripe.create_bank_account("us_verified")
    fake_stripe.hang_next(1, seconds=2)
    response = create(owner, wallet, amount=2_500, destination=bank_account, key="lost")
    payout = Payout.objects.get(pk=response.json()["id"])
    assert (payout.status, payout.gateway_reference) == ("in_transit", "")  # we never heard back
    [stripe_payout] = fake_stripe.payouts

    event = received(
        deliver.stripe(stripe_event("payout.paid", fake_stripe.settle_payout(stripe_payout["id"])))
    )

    assert event.status == S.PROCESSED
    payout.refresh_from_db()
    assert (payout.status, payout.gateway_reference) == ("paid", stripe_payout["id"])
    assert len(fake_stripe.payouts) == 1
