"""The admin's whole review queue (Review): held payments and held deposits, decided alike."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory
from apps.audit.models import AuditLog
from apps.ledger.models import JournalEntry
from apps.payments.models import Review
from apps.payments.services import payment_create
from apps.wallets.models import Transaction, Wallet
from apps.wallets.services import wallet_create, wallet_deposit

pytestmark = pytest.mark.django_db

REVIEWS_URL = reverse("admin:payments_review_changelist")
BIG = 50_000_000


def held_deposit(owner, amount=BIG):
    wallet = wallet_create(actor=owner, user=owner, currency="USD")
    txn = wallet_deposit(
        actor=owner, user=owner, wallet_id=wallet.pk, amount=amount, payment_method="tok_visa"
    )
    assert txn.status == "in_review"
    return wallet, txn


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reviewer(staff_reviewer):
    return logged_in(staff_reviewer)


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def test_the_review_queue_shows_held_deposits_and_payments_with_money_customer_and_reasons(reviewer, user):
    _, deposit = held_deposit(user)
    payment = payment_create(
        actor=user, owner=user, amount=7000, currency="USD", payment_method="tok_riskLevelElevated"
    )
    ordinary = wallet_deposit(
        actor=user, user=user, wallet_id=deposit.destination_wallet_id, amount=500, payment_method="tok_visa"
    )

    response = reviewer.get(REVIEWS_URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Review queue: payments and deposits held for review" in page
    assert deposit.pk in page
    assert payment.pk in page
    assert ordinary.pk not in page
    assert "500,000.00 USD" in page
    assert "amount_over_threshold" in page
    assert "gateway_elevated_risk" in page
    assert user.email in page
    deposits_only = reviewer.get(REVIEWS_URL, {"kind": "deposit"}).content.decode()
    assert deposit.pk in deposits_only
    assert payment.pk not in deposits_only


def test_approving_a_held_deposit_from_the_admin_credits_the_wallet(reviewer, staff_reviewer, user):
    wallet, deposit = held_deposit(user)
    review = Review.objects.get(deposit=deposit)

    response = reviewer.post(
        REVIEWS_URL,
        {"action": "approve_selected", "_selected_action": [review.pk], "apply": "1", "note": "ID checked"},
        follow=True,
    )

    assert any("now completed" in message for message in messages_of(response))
    assert Transaction.objects.get(pk=deposit.pk).status == "completed"
    assert Wallet.objects.get(pk=wallet.pk).balance == BIG
    review.refresh_from_db()
    assert (review.status, review.decided_by_id, review.note) == ("approved", staff_reviewer.pk, "ID checked")
    assert AuditLog.objects.filter(entity_id=deposit.pk, action="review.approve").count() == 1


def test_an_admin_decision_asks_for_a_note_first_and_changes_nothing_until_then(reviewer, user):
    wallet, deposit = held_deposit(user)
    review = Review.objects.get(deposit=deposit)

    page = reviewer.post(REVIEWS_URL, {"action": "deny_selected", "_selected_action": [review.pk]})

    assert page.status_code == 200
    assert deposit.pk in page.content.decode()
    assert Transaction.objects.get(pk=deposit.pk).status == "in_review"
    assert Review.objects.get(pk=review.pk).status == "open"


def test_the_admin_refuses_a_reviewer_their_own_deposit(reviewer, staff_reviewer):
    wallet, deposit = held_deposit(staff_reviewer)
    review = Review.objects.get(deposit=deposit)

    response = reviewer.post(
        REVIEWS_URL,
        {"action": "approve_selected", "_selected_action": [review.pk], "apply": "1", "note": "mine"},
        follow=True,
    )

    assert any("own deposit" in message for message in messages_of(response))
    assert Transaction.objects.get(pk=deposit.pk).status == "in_review"
    assert Wallet.objects.get(pk=wallet.pk).balance == 0
    assert not JournalEntry.objects.exists()
    assert Review.objects.get(pk=review.pk).status == "open"


def test_staff_without_the_review_permission_cannot_open_or_decide_the_queue(user):
    _, deposit = held_deposit(user)
    review = Review.objects.get(deposit=deposit)
    agent = UserFactory(is_staff=True, roles=[Roles.CUSTOMER])
    agent.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client = logged_in(agent)

    assert client.get(REVIEWS_URL).status_code == 403
    client.post(
        REVIEWS_URL,
        {"action": "approve_selected", "_selected_action": [review.pk], "apply": "1", "note": "x"},
    )
    assert Transaction.objects.get(pk=deposit.pk).status == "in_review"


def test_the_dashboards_review_queue_counts_held_deposits(user):
    from apps.backoffice.selectors import dashboard_figures

    _, deposit = held_deposit(user)
    payment_create(
        actor=user, owner=user, amount=7000, currency="USD", payment_method="tok_riskLevelElevated"
    )

    assert dashboard_figures().queue_size == 2
    Review.objects.filter(deposit=deposit).update(status="approved")
    Transaction.objects.filter(pk=deposit.pk).update(status="failed")
    assert dashboard_figures().queue_size == 1
