"""The review queue and payment pages of the admin, and decisions taken from them."""

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory
from apps.audit.models import AuditLog
from apps.core.models import OutboxEvent
from apps.payments.models import Payment, Review
from apps.payments.services import payment_create, payment_refund, review_decide
from apps.wallets.services import wallet_create

pytestmark = pytest.mark.django_db

QUEUE_URL = reverse("admin:payments_payment_changelist")


def change_url(payment_id):
    return reverse("admin:payments_payment_change", args=[quote(payment_id)])


def decide_url(payment_id, decision):
    return reverse("admin:payments_payment_decide", args=[quote(payment_id), decision])


def pay(owner, token="tok_riskLevelElevated", amount=7000, currency="USD", age=None):
    payment = payment_create(actor=owner, owner=owner, amount=amount, currency=currency, payment_method=token)
    if age is not None:
        Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - age)
    return Payment.objects.get(pk=payment.pk)


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def reviewer(staff_reviewer):
    client = Client()
    client.force_login(staff_reviewer)
    return client


@pytest.fixture
def support_agent(db):
    """Staff who may read payments but not decide reviews (a customer-only role)."""
    agent = UserFactory(is_staff=True, roles=[Roles.CUSTOMER])
    agent.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client = Client()
    client.force_login(agent)
    return client


def test_the_queue_opens_on_held_payments_oldest_first_with_money_customer_and_reasons(reviewer, user):
    newer = pay(user, amount=7000, age=timedelta(minutes=5))
    older = pay(user, amount=123456, age=timedelta(hours=3))
    settled = pay(user, token="tok_visa", amount=999)

    response = reviewer.get(QUEUE_URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Review queue" in page
    assert settled.pk not in page
    assert page.index(older.pk) < page.index(newer.pk)
    assert "1,234.56 USD" in page
    assert "70.00 USD" in page
    assert user.email in page
    assert "gateway_elevated_risk" in page
    assert "3\xa0hours" in page  # the age of the oldest


def test_all_statuses_is_one_click_away_and_lists_newest_first(reviewer, user):
    held = pay(user, age=timedelta(hours=1))
    settled = pay(user, token="tok_visa")

    page = reviewer.get(QUEUE_URL, {"status": "all"}).content.decode()

    assert page.index(settled.pk) < page.index(held.pk)
    assert 'href="?status=all"' in page


def test_filters_by_status_currency_review_status_and_date(reviewer, user):
    eur = pay(user, currency="EUR")
    usd = pay(user)
    declined = pay(user, token="tok_chargeDeclined")
    review_decide(actor=UserFactory(roles=[Roles.REVIEWER]), payment_id=usd.pk, decision="deny", note="no")

    def listed(**params):
        page = reviewer.get(QUEUE_URL, params).content.decode()
        return {p for p in (eur.pk, usd.pk, declined.pk) if p in page}

    assert listed(currency="EUR") == {eur.pk}
    assert listed(status="failed") == {declined.pk}
    assert listed(status="all", review="denied") == {usd.pk}
    assert listed(status="all", review="none") == {declined.pk}
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
    assert listed(status="all", created_at__gte=today) == {eur.pk, usd.pk, declined.pk}


def test_the_payment_page_tells_the_whole_story(reviewer, user):
    wallet_create(actor=user, user=user, currency="USD")
    earlier = pay(user, token="tok_visa", amount=2500)
    payment_refund(actor=user, owner=user, payment_id=earlier.pk, amount=500, reason="damaged")
    held = pay(user, amount=8800)

    held_page = reviewer.get(change_url(held.pk)).content.decode()
    earlier_page = reviewer.get(change_url(earlier.pk)).content.decode()

    assert "gateway_elevated_risk" in held_page  # the review's reasons
    assert earlier.pk in held_page  # the customer's other payments
    assert user.wallets.get().pk in held_page
    assert "authorize" in held_page  # the gateway attempt
    assert "payment.hold" in held_page  # the audit trail
    assert 'id="approve-button"' in held_page
    assert "88.00 USD" in held_page
    refund = earlier.refunds.get()
    assert refund.pk in earlier_page
    assert "5.00 USD" in earlier_page
    assert 'id="approve-button"' not in earlier_page


def test_approving_asks_for_a_note_then_captures_and_audits(reviewer, staff_reviewer, user):
    held = pay(user)

    confirmation = reviewer.get(decide_url(held.pk, "approve"))
    without_note = reviewer.post(decide_url(held.pk, "approve"), {"note": "  "})
    done = reviewer.post(decide_url(held.pk, "approve"), {"note": "called the customer"}, follow=True)

    assert confirmation.status_code == 200
    assert 'name="note"' in confirmation.content.decode()
    assert without_note.status_code == 200
    assert "This field is required." in without_note.content.decode()
    held.refresh_from_db()
    assert held.status == Payment.Status.SUCCEEDED
    assert held.amount_captured == 7000
    assert held.review.status == Review.Status.APPROVED
    assert held.review.note == "called the customer"
    assert done.redirect_chain[-1][0] == change_url(held.pk)
    assert any("Approved" in message for message in messages_of(done))
    audit = AuditLog.objects.get(entity_id=held.pk, action="review.approve")
    assert audit.actor_id == staff_reviewer.pk
    assert audit.after["note"] == "called the customer"
    assert OutboxEvent.objects.filter(aggregate_id=held.pk, event_type="payment.review_decided").exists()


def test_denying_voids_the_payment(reviewer, user):
    held = pay(user)

    reviewer.post(decide_url(held.pk, "deny"), {"note": "stolen card"})

    held.refresh_from_db()
    assert held.status == Payment.Status.CANCELED
    assert held.amount_captured == 0
    assert held.review.status == Review.Status.DENIED
    assert AuditLog.objects.filter(entity_id=held.pk, action="review.deny").exists()


def test_a_second_decision_is_refused_with_a_message_not_an_error(reviewer, user):
    held = pay(user)
    reviewer.post(decide_url(held.pk, "approve"), {"note": "fine"})

    again = reviewer.post(decide_url(held.pk, "deny"), {"note": "changed my mind"}, follow=True)

    assert again.status_code == 200
    assert any("already approved" in message for message in messages_of(again))
    assert Payment.objects.get(pk=held.pk).status == Payment.Status.SUCCEEDED
    # Opening the confirmation page of a decided payment says so instead of asking for a note.
    reopened = reviewer.get(decide_url(held.pk, "deny"), follow=True)
    assert any("not waiting for a decision" in message for message in messages_of(reopened))


def test_staff_without_the_review_permission_see_no_buttons_and_are_refused(support_agent, user):
    held = pay(user)

    page = support_agent.get(change_url(held.pk))
    queue = support_agent.get(QUEUE_URL)

    assert page.status_code == 200
    assert 'id="approve-button"' not in page.content.decode()
    assert decide_url(held.pk, "approve") not in page.content.decode()
    assert "approve_selected" not in queue.content.decode()
    assert support_agent.get(decide_url(held.pk, "approve")).status_code == 403
    assert support_agent.post(decide_url(held.pk, "approve"), {"note": "sneaky"}).status_code == 403
    support_agent.post(
        QUEUE_URL, {"action": "approve_selected", "_selected_action": [held.pk], "apply": "1", "note": "x"}
    )
    assert Payment.objects.get(pk=held.pk).status == Payment.Status.IN_REVIEW


def test_bulk_approve_asks_one_note_and_reports_each_refusal(reviewer, user):
    first, second, decided = pay(user), pay(user), pay(user)
    review_decide(
        actor=UserFactory(roles=[Roles.REVIEWER]), payment_id=decided.pk, decision="deny", note="no"
    )
    selected = {"action": "approve_selected", "_selected_action": [first.pk, second.pk, decided.pk]}

    # Selected from the list of all statuses: the queue itself would not list the decided one.
    every_status = f"{QUEUE_URL}?status=all"

    asked = reviewer.post(every_status, selected)
    done = reviewer.post(every_status, {**selected, "apply": "1", "note": "batch checked"}, follow=True)

    assert asked.status_code == 200
    assert 'name="note"' in asked.content.decode()
    statuses = dict(
        Payment.objects.filter(pk__in=[first.pk, second.pk, decided.pk]).values_list("pk", "status")
    )
    assert statuses == {first.pk: "succeeded", second.pk: "succeeded", decided.pk: "canceled"}
    texts = messages_of(done)
    assert any(decided.pk in text and "already denied" in text for text in texts), texts
    assert sum("Approved" in text for text in texts) == 2


def test_payments_cannot_be_added_edited_or_deleted_even_by_a_superuser(admin_client, user):
    payment = pay(user, token="tok_visa")

    page = admin_client.get(change_url(payment.pk)).content.decode()
    edit = admin_client.post(change_url(payment.pk), {"status": "refunded", "amount_captured": 1})

    assert 'name="amount"' not in page
    assert 'name="status"' not in page
    assert edit.status_code == 403
    assert admin_client.get(reverse("admin:payments_payment_add")).status_code == 403
    assert admin_client.get(reverse("admin:payments_payment_delete", args=[payment.pk])).status_code == 403
    payment.refresh_from_db()
    assert (payment.status, payment.amount_captured) == (Payment.Status.SUCCEEDED, 7000)


def test_people_who_are_not_staff_are_sent_to_the_login_page(client, user):
    held = pay(user)
    client.force_login(user)

    for url in (QUEUE_URL, decide_url(held.pk, "approve")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_select_all_then_approve_decides_the_whole_queue(reviewer, user):
    held = [pay(user) for _ in range(3)]
    settled = pay(user, token="tok_visa")
    everything = {"action": "approve_selected", "select_across": "1", "_selected_action": [held[0].pk]}

    asked = reviewer.post(QUEUE_URL, everything)
    reviewer.post(QUEUE_URL, {**everything, "apply": "1", "note": "all checked"})

    assert all(p.pk in asked.content.decode() for p in held)
    assert set(Payment.objects.filter(pk__in=[p.pk for p in held]).values_list("status", flat=True)) == {
        "succeeded"
    }
    assert Review.objects.filter(note="all checked").count() == 3
    assert Payment.objects.get(pk=settled.pk).status == Payment.Status.SUCCEEDED


def test_the_queue_costs_the_same_queries_for_two_or_twenty_payments(reviewer, user):
    def queries_for_queue():
        with CaptureQueriesContext(connection) as captured:
            assert reviewer.get(QUEUE_URL).status_code == 200
        return len(captured)

    for _ in range(2):
        pay(user)
    few = queries_for_queue()
    for _ in range(18):
        pay(user)

    assert queries_for_queue() == few


def test_a_reviewer_cannot_decide_their_own_payment_in_the_admin(reviewer, staff_reviewer):
    own = pay(staff_reviewer)

    refused = reviewer.post(decide_url(own.pk, "approve"), {"note": "looks fine to me"}, follow=True)

    assert refused.status_code == 200
    assert any("their own payment" in message for message in messages_of(refused))
    own.refresh_from_db()
    assert own.status == Payment.Status.IN_REVIEW
    assert own.review.status == Review.Status.OPEN
    assert not AuditLog.objects.filter(entity_id=own.pk, action__startswith="review.").exists()
    assert not OutboxEvent.objects.filter(aggregate_id=own.pk, event_type="payment.review_decided").exists()
