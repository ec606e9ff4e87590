"""Payouts in the back office: the list and its filters, a payout's page, the review of payouts held
for review (approve / deny with a note, the reviewer's permission, never one's own payout), a
wallet's payouts on its page, and the dashboard's payouts by status."""

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory
from apps.audit.models import AuditLog
from apps.payouts.models import Payout
from apps.payouts.services import payout_create
from apps.payouts.tests.conftest import money_state
from apps.wallets.models import Wallet
from apps.wallets.tests.factories import WalletFactory, fund

pytestmark = pytest.mark.django_db(transaction=True)

LIST_URL = reverse("admin:payouts_payout_changelist")


def change_url(payout_id):
    return reverse("admin:payouts_payout_change", args=[quote(payout_id)])


def decide_url(payout_id, decision):
    return reverse("admin:payouts_payout_decide", args=[quote(payout_id), decision])


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _thresholds(settings):
    settings.PAYOUT_REVIEW_AMOUNT_THRESHOLD = 5_000


@pytest.fixture
def wallet():
    wallet = WalletFactory()
    fund(wallet, 20_000)
    return wallet


def payout(wallet, amount=1_000, destination="btok_success"):
    made = payout_create(
        actor=wallet.user, user=wallet.user, wallet_id=wallet.pk, amount=amount, destination=destination
    )
    return Payout.objects.get(pk=made.pk)


@pytest.fixture
def reviewer(staff_reviewer):
    return logged_in(staff_reviewer)


def test_the_list_filters_by_status_gateway_and_held_for_review_and_searches_ids(reviewer, wallet):
    paid = payout(wallet, 1_000)
    failed = payout(wallet, 1_200, destination="btok_accountClosed")
    held = payout(wallet, 6_000)
    other = payout(_funded(), 1_500)

    def listed(**params):
        response = reviewer.get(LIST_URL, params)
        assert response.status_code == 200
        return {row.pk for row in response.context["cl"].result_list}

    assert listed() == {paid.pk, failed.pk, held.pk, other.pk}
    assert listed(status__exact="paid") == {paid.pk, other.pk}
    assert listed(status__exact="failed") == {failed.pk}
    assert listed(gateway__exact="simulated") == {paid.pk, failed.pk, held.pk, other.pk}
    assert listed(gateway__exact="stripe") == set()
    assert listed(held="open") == {held.pk}
    assert listed(held="none") == {paid.pk, failed.pk, other.pk}
    assert listed(q=held.pk) == {held.pk}
    assert listed(q=wallet.pk) == {paid.pk, failed.pk, held.pk}
    page = reviewer.get(LIST_URL, {"held": "open"}).content.decode()
    assert "Review queue: payouts held for review, oldest first" in page
    assert "60.00" in page


def _funded():
    wallet = WalletFactory()
    fund(wallet, 5_000)
    return wallet


def test_payouts_cannot_be_added_edited_or_deleted_even_by_a_superuser(admin_client, wallet):
    made = payout(wallet)

    page = admin_client.get(change_url(made.pk)).content.decode()
    edit = admin_client.post(change_url(made.pk), {"status": "failed", "amount": 1})

    assert 'name="amount"' not in page
    assert 'name="status"' not in page
    assert "btok_success" not in page  # the destination token is never shown, only its last4
    assert "•••• 6789" in page
    assert edit.status_code == 403
    assert admin_client.get(reverse("admin:payouts_payout_add")).status_code == 403
    assert admin_client.get(reverse("admin:payouts_payout_delete", args=[made.pk])).status_code == 403
    made.refresh_from_db()
    assert (made.status, made.amount) == ("paid", 1_000)


def test_a_reviewer_approves_a_held_payout_with_a_note_and_it_is_sent(reviewer, staff_reviewer, wallet):
    held = payout(wallet, 6_000)
    assert (held.status, held.review_status) == ("pending", "open")

    page = reviewer.get(change_url(held.pk)).content.decode()
    assert 'id="approve-button"' in page
    assert "amount_over_threshold" in page
    confirm = reviewer.get(decide_url(held.pk, "approve"))
    assert confirm.status_code == 200
    assert 'name="note"' in confirm.content.decode()
    empty = reviewer.post(decide_url(held.pk, "approve"), {"note": "  "})
    assert empty.status_code == 200  # the page again: a note is required
    assert Payout.objects.get(pk=held.pk).review_status == "open"

    done = reviewer.post(decide_url(held.pk, "approve"), {"note": "known customer, payroll"}, follow=True)

    held.refresh_from_db()
    assert (held.status, held.review_status, held.review_note) == (
        "paid",
        "approved",
        "known customer, payroll",
    )
    assert held.review_decided_by == staff_reviewer
    assert messages_of(done) == [f"Approved {held.pk}: the payout is now pending."]
    assert AuditLog.objects.filter(action="review.approve", entity_id=held.pk).count() == 1
    assert Wallet.objects.get(pk=wallet.pk).balance == 14_000


def test_a_reviewer_denies_a_held_payout_and_the_money_is_back(reviewer, wallet):
    held = payout(wallet, 6_000)

    reviewer.post(decide_url(held.pk, "deny"), {"note": "card testing pattern"})

    held.refresh_from_db()
    assert (held.status, held.review_status) == ("canceled", "denied")
    assert Wallet.objects.get(pk=wallet.pk).balance == 20_000
    page = reviewer.get(change_url(held.pk)).content.decode()
    assert 'id="approve-button"' not in page
    assert "card testing pattern" in page
    again = reviewer.post(decide_url(held.pk, "approve"), {"note": "oops"}, follow=True)
    assert messages_of(again)[0].startswith(f"{held.pk}: ")  # already decided: a message, no error


def test_a_reviewer_cannot_decide_their_own_payout(staff_reviewer):
    own = WalletFactory(user=staff_reviewer)
    fund(own, 10_000)
    held = payout(own, 6_000)
    before = money_state()

    response = logged_in(staff_reviewer).post(decide_url(held.pk, "approve"), {"note": "mine"}, follow=True)

    assert "cannot decide a review of their own payout" in messages_of(response)[0]
    assert money_state() == before


def test_staff_without_the_review_permission_see_no_buttons_and_are_refused(wallet):
    agent = UserFactory(is_staff=True, roles=[Roles.CUSTOMER])
    agent.user_permissions.add(Permission.objects.get(codename="view_payout"))
    client = logged_in(agent)
    held = payout(wallet, 6_000)

    page = client.get(change_url(held.pk))

    assert page.status_code == 200
    assert 'id="approve-button"' not in page.content.decode()
    assert client.post(decide_url(held.pk, "approve"), {"note": "x"}).status_code == 403
    assert Payout.objects.get(pk=held.pk).review_status == "open"


def test_bulk_deny_from_the_queue_asks_one_note(reviewer, wallet):
    first, second = payout(wallet, 6_000), payout(wallet, 7_000)
    selection = {"action": "deny_selected", "_selected_action": [first.pk, second.pk]}

    asked = reviewer.post(LIST_URL + "?held=open", selection)
    assert 'name="note"' in asked.content.decode()
    reviewer.post(LIST_URL + "?held=open", {**selection, "apply": "1", "note": "one note for both"})

    assert set(Payout.objects.values_list("status", flat=True)) == {"canceled"}
    assert Wallet.objects.get(pk=wallet.pk).balance == 20_000


def test_a_wallets_page_lists_its_payouts(reviewer, admin_client, wallet):
    made = payout(wallet, 1_000)

    page = admin_client.get(reverse("admin:wallets_wallet_change", args=[quote(wallet.pk)])).content.decode()

    assert made.pk in page
    assert change_url(made.pk) in page
    assert "Freeze wallet" in page  # the wallet's own page is still whole


def test_the_review_queue_points_at_payouts_held_for_review(reviewer):
    page = reviewer.get(reverse("admin:payments_review_changelist")).content.decode()

    assert f"{LIST_URL}?held=open" in page


def test_the_dashboard_counts_payouts_by_status(admin_client, wallet):
    payout(wallet, 1_000)
    payout(wallet, 1_200, destination="btok_accountClosed")
    payout(wallet, 6_000)

    response = admin_client.get(reverse("backoffice:dashboard"))

    figures = response.context["figures"]
    assert figures.payouts == {"pending": 1, "in_transit": 0, "paid": 1, "failed": 1, "canceled": 0}
    assert figures.payouts_held == 1
    assert response.context["chart_data"]["payouts"] == figures.payouts
    page = response.content.decode()
    assert 'id="chart-payouts"' in page
    assert '<tr data-status="paid"><th>paid</th><td class="num">1</td></tr>' in page
