"""The wallet leg every engine function shares (`wallet_post_v1`, migration wallets 0008), through its callers.

Each wallet payment function moves its wallet through the one leg: a frozen wallet is refused
naming the caller's parameter, a short one naming `amount`, before anything is written; a wallet
paying exactly its balance ends at zero; a credit that must land (a refund) lands on a frozen
wallet; a hold captured whole writes no wallet line and no wallet event. Through the API the
refusals arrive in the error envelope.
"""

from __future__ import annotations

import pytest

from apps.core.models import OutboxEvent
from apps.ledger.models import JournalEntry, Posting
from apps.payments.models import Payment
from apps.payments.services import payment_cancel, payment_capture, payment_create, payment_refund
from apps.wallets.errors import InsufficientFunds, WalletInactive
from apps.wallets.models import Wallet
from apps.wallets.tests.conftest import money_state

pytestmark = pytest.mark.django_db


def _pay(user, wallet, amount, capture_method="automatic"):
    return payment_create(
        actor=user,
        owner=user,
        amount=amount,
        currency="USD",
        payment_method=f"wallet:{wallet.pk}",
        capture_method=capture_method,
    )


def _freeze(wallet):
    Wallet.objects.filter(pk=wallet.pk).update(status=Wallet.Status.FROZEN)


@pytest.mark.parametrize("capture_method", ["automatic", "manual"])  # the capture's leg, the hold's leg
def test_a_frozen_wallet_is_refused_naming_the_callers_parameter_and_nothing_is_written(
    user, funded_wallet, capture_method
):
    wallet = funded_wallet(500)
    _freeze(wallet)
    before, payments = money_state(), Payment.objects.count()

    with pytest.raises(WalletInactive) as refused:
        _pay(user, wallet, 100, capture_method)

    assert (refused.value.param, refused.value.message) == (
        "payment_method",
        f"Wallet {wallet.pk} is frozen.",
    )
    assert money_state() == before
    assert Payment.objects.count() == payments


@pytest.mark.parametrize("capture_method", ["automatic", "manual"])
def test_a_wallet_short_by_one_cent_is_refused_naming_the_amount_and_nothing_is_written(
    user, funded_wallet, capture_method
):
    wallet = funded_wallet(500)
    before = money_state()

    with pytest.raises(InsufficientFunds) as refused:
        _pay(user, wallet, 501, capture_method)

    assert refused.value.param == "amount"
    assert money_state() == before


def test_paying_exactly_the_balance_leaves_the_wallet_at_zero(user, funded_wallet):
    wallet = funded_wallet(500)

    payment = _pay(user, wallet, 500)

    wallet.refresh_from_db()
    assert (payment.status, wallet.balance) == ("succeeded", 0)
    deducted = OutboxEvent.objects.get(event_type="wallet.funds_deducted", aggregate_id=wallet.pk)
    assert (deducted.payload["amount"], deducted.payload["balance"]) == (500, 0)


# The hold capture's leg and the release's.
@pytest.mark.parametrize("release", [payment_capture, payment_cancel])
def test_the_legs_that_give_a_hold_back_refuse_a_frozen_wallet(user, funded_wallet, release):
    wallet = funded_wallet(500)
    held = _pay(user, wallet, 200, "manual")
    _freeze(wallet)
    before = money_state()

    with pytest.raises(WalletInactive) as refused:
        release(actor=user, owner=user, payment_id=held.pk)

    assert refused.value.param == "payment_method"
    assert money_state() == before


def test_a_refund_lands_on_a_frozen_wallet(user, funded_wallet):
    wallet = funded_wallet(500)
    payment = _pay(user, wallet, 300)
    _freeze(wallet)

    refund = payment_refund(actor=user, owner=user, payment_id=payment.pk, amount=100)

    wallet.refresh_from_db()
    assert (refund.status, wallet.status, wallet.balance) == ("succeeded", "frozen", 300)


def test_a_hold_captured_whole_writes_no_wallet_line_and_no_wallet_event(user, funded_wallet):
    wallet = funded_wallet(500)
    held = _pay(user, wallet, 200, "manual")
    events = OutboxEvent.objects.filter(aggregate_id=wallet.pk).count()

    payment_capture(actor=user, owner=user, payment_id=held.pk)

    entry = JournalEntry.objects.get(kind="payment_capture", memo=f"payment {held.pk}")
    assert sorted(Posting.objects.filter(entry=entry).values_list("amount", flat=True)) == [-200, 200]
    assert not Posting.objects.filter(entry=entry, account_id=wallet.ledger_account_id).exists()
    assert OutboxEvent.objects.filter(aggregate_id=wallet.pk).count() == events
    wallet.refresh_from_db()
    assert wallet.balance == 300


def test_the_api_answers_the_legs_refusals_in_the_envelope(auth_client, user, funded_wallet):
    wallet = funded_wallet(500)
    body = {"amount": 100, "currency": "USD", "payment_method": f"wallet:{wallet.pk}"}
    payments = Payment.objects.count()

    short = auth_client.post("/api/v1/payments", {**body, "amount": 501}, format="json")
    _freeze(wallet)
    frozen = auth_client.post("/api/v1/payments", body, format="json")

    assert (short.status_code, short.json()["error"]["code"], short.json()["error"]["param"]) == (
        400,
        "insufficient_funds",
        "amount",
    )
    assert (frozen.status_code, frozen.json()["error"]["code"], frozen.json()["error"]["param"]) == (
        400,
        "wallet_inactive",
        "payment_method",
    )
    assert Payment.objects.count() == payments
