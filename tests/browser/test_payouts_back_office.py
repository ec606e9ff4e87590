"""A reviewer decides payouts held for review in a real browser: the payouts' queue, a payout's page,
the note, and the wallet's page showing the result."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory
from apps.audit.models import AuditLog
from apps.payouts.models import Payout
from apps.payouts.services import payout_create
from apps.wallets.models import Wallet
from apps.wallets.tests.factories import WalletFactory, fund

pytestmark = pytest.mark.browser

PAYOUTS_QUEUE = "/admin/payouts/payout/?held=open"


@pytest.fixture
def reviewer(transactional_db):
    return UserFactory(is_staff=True, roles=[Roles.REVIEWER], email="rita.reviewer@example.com")


@pytest.fixture
def held(transactional_db, settings):
    """A payout of 600.00 USD held for review (over the threshold), its money already in transit."""
    settings.PAYOUT_REVIEW_AMOUNT_THRESHOLD = 50_000
    wallet = WalletFactory(user=UserFactory(email="paula.payee@example.com"))
    fund(wallet, 100_000)
    payout = payout_create(
        actor=wallet.user, user=wallet.user, wallet_id=wallet.pk, amount=60_000, destination="btok_success"
    )
    assert (payout.status, payout.review_status) == ("pending", "open")
    return payout


def _decide(page, decision: str, note: str) -> None:
    page.click(f"#{decision}-button")
    page.click("#note-confirmation button[name=apply]")  # no note yet: refused, nothing decided
    assert "This field is required." in page.locator("#note-confirmation").inner_text()
    page.fill("textarea[name=note]", note)
    page.click("#note-confirmation button[name=apply]")


def test_a_reviewer_denies_a_held_payout_with_a_note_and_the_wallet_has_its_money_back(
    signed_in, reviewer, held, screenshot, live_server
):
    page = signed_in(reviewer, next=PAYOUTS_QUEUE)
    row = page.locator("#result_list tbody tr", has_text=held.pk)
    assert "paula.payee@example.com" in row.inner_text()
    assert Wallet.objects.get(pk=held.wallet_id).balance == 40_000  # held: the money is in transit
    screenshot(page, "payouts-queue")

    row.get_by_role("link", name=held.pk).click()
    page.wait_for_selector("#review")
    assert "amount_over_threshold" in page.locator("#review").inner_text()
    _decide(page, "deny", "Deposit by a card reported stolen an hour ago.")

    assert "Denied" in page.locator(".messagelist .success").inner_text()
    assert page.locator("#payout-status").inner_text() == "canceled"
    assert page.locator("#approve-button").count() == 0
    screenshot(page, "payout-denied", full_page=True)
    assert AuditLog.objects.filter(entity_id=held.pk, action="review.deny", actor_id=reviewer.pk).exists()

    # The wallet's page: its balance is whole again and the payout shows canceled.
    page.goto(f"{live_server.url}/admin/wallets/wallet/{quote(held.wallet_id)}/change/")
    assert "1,000.00" in page.locator(".field-balance_display").inner_text()
    payout_row = page.locator("tr", has_text=held.pk)
    assert "canceled" in payout_row.inner_text()


def test_a_reviewer_approves_a_held_payout_and_it_is_paid(signed_in, reviewer, held):
    page = signed_in(reviewer, next=f"/admin/payouts/payout/{quote(held.pk)}/change/")

    _decide(page, "approve", "Known payee; salary.")

    assert "Approved" in page.locator(".messagelist .success").inner_text()
    payout = Payout.objects.get(pk=held.pk)
    assert (payout.status, payout.review_status, payout.review_decided_by) == ("paid", "approved", reviewer)
    page.reload()
    assert page.locator("#payout-status").inner_text() == "paid"
    assert Wallet.objects.get(pk=held.wallet_id).balance == 40_000
