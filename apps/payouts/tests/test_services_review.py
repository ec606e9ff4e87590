"""Payouts held for review: the risk rules, and a reviewer's decision."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory
from apps.core.errors import ApplicationError
from apps.gateways.models import SimulatedPayout
from apps.ledger.selectors import ledger_system_account_balances
from apps.payouts.models import Payout
from apps.payouts.services import decide_payout_review, payout_cancel, payout_create
from apps.payouts.tests.conftest import money_state
from apps.wallets.models import Transaction, Wallet
from apps.wallets.tests.factories import WalletFactory, fund


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.PAYOUT_REVIEW_AMOUNT_THRESHOLD = 5_000


def _held(wallet, amount=6_000) -> Payout:
    return payout_create(
        actor=wallet.user, user=wallet.user, wallet_id=wallet.pk, amount=amount, destination="btok_success"
    )


def _balance(wallet) -> int:
    return Wallet.objects.get(pk=wallet.pk).balance


@pytest.mark.django_db(transaction=True)
def test_a_payout_at_the_threshold_is_held_pending_with_its_money_in_transit_and_not_sent(wallet):
    payout = _held(wallet, amount=5_000)

    payout.refresh_from_db()
    assert (payout.status, payout.review_status, payout.review_reasons) == (
        "pending",
        "open",
        ["amount_over_threshold"],
    )
    assert _balance(wallet) == 5_000
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 5_000}
    assert not SimulatedPayout.objects.exists()  # the worker did not send it


@pytest.mark.django_db(transaction=True)
def test_below_the_threshold_a_payout_is_not_held(wallet):
    payout = _held(wallet, amount=4_999)

    payout.refresh_from_db()
    assert (payout.status, payout.review_status) == ("paid", "")


@pytest.mark.django_db(transaction=True)
def test_an_approved_payout_is_sent_and_paid(wallet, reviewer):
    payout = _held(wallet)

    decided = decide_payout_review(payout=payout, approve=True, note="known customer", reviewer=reviewer)

    decided.refresh_from_db()
    assert (decided.status, decided.review_status, decided.review_note) == (
        "paid",
        "approved",
        "known customer",
    )
    assert decided.review_decided_by == reviewer
    assert _balance(wallet) == 4_000
    assert SimulatedPayout.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_denied_payout_is_canceled_and_the_money_comes_back(wallet, reviewer):
    payout = _held(wallet)

    decided = decide_payout_review(
        payout=payout, approve=False, note="stolen card deposits", reviewer=reviewer
    )

    decided.refresh_from_db()
    assert (decided.status, decided.review_status) == ("canceled", "denied")
    assert _balance(wallet) == 10_000
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}
    assert not SimulatedPayout.objects.exists()


@pytest.mark.django_db
def test_the_owner_can_cancel_a_payout_held_for_review_and_then_nobody_decides_it(wallet, reviewer):
    payout = _held(wallet)

    canceled = payout_cancel(actor=wallet.user, user=wallet.user, payout_id=payout.pk)

    assert (canceled.status, canceled.review_status) == ("canceled", "withdrawn")
    assert _balance(wallet) == 10_000
    with pytest.raises(ApplicationError) as refused:
        decide_payout_review(payout=payout.pk, approve=True, note="late", reviewer=reviewer)
    assert (refused.value.status_code, refused.value.code) == (409, "review_closed")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "note", "status", "code"),
    [
        ("customer", "ok", 403, "review_permission_required"),
        ("reviewer", "  ", 400, "parameter_missing"),
        ("owner", "mine", 403, "review_own_payment"),
    ],
)
def test_a_decision_is_refused_without_permission_note_or_on_ones_own_payout(
    wallet, reviewer, who, note, status, code
):
    if who == "owner":  # a reviewer's own wallet
        wallet = WalletFactory(user=reviewer)
        fund(wallet, 10_000)
    payout = _held(wallet)
    before = money_state()
    actor = {"customer": UserFactory(), "reviewer": reviewer, "owner": reviewer}[who]

    with pytest.raises(ApplicationError) as refused:
        decide_payout_review(payout=payout, approve=True, note=note, reviewer=actor)

    assert (refused.value.status_code, refused.value.code) == (status, code)
    assert money_state() == before
    assert Payout.objects.get(pk=payout.pk).review_status == "open"


@pytest.mark.django_db
def test_a_second_decision_is_refused(wallet, reviewer):
    payout = _held(wallet)
    decide_payout_review(payout=payout, approve=False, note="no", reviewer=reviewer)
    before = money_state()

    with pytest.raises(ApplicationError) as refused:
        decide_payout_review(payout=payout, approve=True, note="yes", reviewer=reviewer)

    assert (refused.value.status_code, refused.value.code) == (409, "review_closed")
    assert money_state() == before


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_racing_make_exactly_one_decision(wallet, reviewer):
    other = UserFactory(is_staff=True, roles=[Roles.REVIEWER])
    payout = _held(wallet)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def decide(who, approve):
        barrier.wait()
        try:
            decide_payout_review(payout=payout.pk, approve=approve, note="race", reviewer=who)
            outcomes.append("decided")
        except ApplicationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=args) for args in ((reviewer, True), (other, False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["decided", "review_closed"]
    payout.refresh_from_db()
    # Approved and paid, or denied and put back: never both, never twice.
    assert (payout.status, _balance(wallet)) in {("paid", 4_000), ("canceled", 10_000)}
    assert ledger_system_account_balances(code="payouts_in_transit") == {"USD": 0}


@pytest.mark.django_db
def test_the_first_payout_after_a_large_deposit_is_held(settings):
    settings.DEPOSIT_REVIEW_AMOUNT_THRESHOLD = 8_000
    wallet = WalletFactory()
    fund(wallet, 9_000)

    first = _held(wallet, amount=100)
    second = _held(wallet, amount=100)

    assert first.review_reasons == ["first_payout_after_large_deposit"]
    assert second.review_status == ""  # the deposit's first payout was the one held


@pytest.mark.django_db
def test_a_large_deposit_older_than_the_window_does_not_hold_a_payout(settings):
    settings.DEPOSIT_REVIEW_AMOUNT_THRESHOLD = 8_000
    wallet = WalletFactory()
    fund(wallet, 9_000)
    Transaction.objects.filter(destination_wallet=wallet).update(
        updated_at=timezone.now() - timedelta(seconds=settings.PAYOUT_RECENT_DEPOSIT_WINDOW_SECONDS + 60)
    )

    assert _held(wallet, amount=100).review_status == ""
