"""Staff at work in a real browser: the review queue, decisions, the dashboard."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.accounts.models import Roles
from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.audit.models import AuditLog
from apps.payments.models import Payment
from apps.payments.services import payment_create, review_decide

pytestmark = pytest.mark.browser

QUEUE = "/admin/payments/payment/"


def hold(owner, amount=4200, currency="USD") -> Payment:
    """A payment the gateway flags as risky: authorized, held for review."""
    payment = payment_create(
        actor=owner, owner=owner, amount=amount, currency=currency, payment_method="tok_riskLevelElevated"
    )
    assert payment.status == Payment.Status.IN_REVIEW
    return payment


def decide(page, decision: str, note: str) -> None:
    page.click("#approve-button" if decision == "approve" else "#deny-button")
    page.fill("textarea[name=note]", note)
    page.click("#note-confirmation button[name=apply]")


@pytest.fixture
def reviewer(transactional_db):
    return UserFactory(is_staff=True, roles=[Roles.REVIEWER], email="rita.reviewer@example.com")


@pytest.fixture
def customer(transactional_db):
    return UserFactory(email="carl.customer@example.com")


def test_a_reviewer_finds_a_held_payment_in_the_queue_and_approves_it(
    signed_in, reviewer, customer, live_server, screenshot
):
    hold(customer, amount=1250)
    held = hold(customer, amount=98_765)
    Payment.objects.filter(pk=held.pk).update(created_at=timezone.now() - timedelta(hours=2))

    page = signed_in(reviewer, next=QUEUE)
    row = page.locator("#result_list tbody tr", has_text=held.pk)
    assert "987.65 USD" in row.inner_text()
    assert customer.email in row.inner_text()
    assert "gateway_elevated_risk" in row.inner_text()
    # Oldest first: the payment waiting two hours heads the queue.
    assert held.pk in page.locator("#result_list tbody tr").first.inner_text()
    screenshot(page, "queue")

    row.get_by_role("link", name=held.pk).click()
    page.wait_for_selector("#review")
    screenshot(page, "payment", full_page=True)
    decide(page, "approve", "Spoke to the customer; the order is genuine.")

    assert "Approved" in page.locator(".messagelist .success").inner_text()
    held.refresh_from_db()
    assert held.status == Payment.Status.SUCCEEDED
    assert held.amount_captured == 98_765
    assert held.review.decided_by == reviewer
    audit = AuditLog.objects.get(entity_id=held.pk, action="review.approve")
    assert audit.actor_id == reviewer.pk
    assert audit.after["note"] == "Spoke to the customer; the order is genuine."
    assert page.locator("#approve-button").count() == 0


def test_a_reviewer_denies_a_held_payment(signed_in, reviewer, customer, screenshot):
    held = hold(customer)
    page = signed_in(reviewer, next=f"{QUEUE}{quote(held.pk)}/change/")

    page.click("#deny-button")
    page.click("#note-confirmation button[name=apply]")  # no note yet: refused, nothing decided
    assert "This field is required." in page.locator("#note-confirmation").inner_text()
    assert Payment.objects.get(pk=held.pk).status == Payment.Status.IN_REVIEW
    page.fill("textarea[name=note]", "Card reported stolen.")
    screenshot(page, "deny-confirmation")
    page.click("#note-confirmation button[name=apply]")

    assert "Denied" in page.locator(".messagelist .success").inner_text()
    held.refresh_from_db()
    assert held.status == Payment.Status.CANCELED
    assert held.amount_captured == 0
    assert AuditLog.objects.filter(entity_id=held.pk, action="review.deny", actor_id=reviewer.pk).exists()


def test_staff_without_the_review_permission_see_no_buttons_and_get_403(signed_in, customer, live_server):
    held = hold(customer)
    support = UserFactory(is_staff=True, roles=[Roles.CUSTOMER])
    support.user_permissions.add(Permission.objects.get(codename="view_payment"))

    page = signed_in(support, next=f"{QUEUE}{quote(held.pk)}/change/")

    assert page.locator("#review").is_visible()
    assert page.locator("#approve-button, #deny-button, .object-tools .backoffice-approve").count() == 0
    response = page.goto(f"{live_server.url}{QUEUE}{quote(held.pk)}/decide/approve/")
    assert response.status == 403
    assert Payment.objects.get(pk=held.pk).status == Payment.Status.IN_REVIEW


def test_two_reviewers_deciding_at_once_one_wins_and_the_other_is_told(signed_in, reviewer, customer):
    held = hold(customer)
    other = UserFactory(is_staff=True, roles=[Roles.REVIEWER])
    change = f"{QUEUE}{quote(held.pk)}/change/"
    pages = {"approve": signed_in(reviewer, next=change), "deny": signed_in(other, next=change)}
    for decision, page in pages.items():
        page.click(f"#{decision}-button")
        page.fill("textarea[name=note]", f"{decision} it")

    # Both sessions submit before either answer comes back: the live server serves them on two
    # threads and the payment's row lock decides who goes first.
    for page in pages.values():
        page.evaluate("document.getElementById('note-confirmation').requestSubmit()")
    for page in pages.values():
        page.wait_for_url(f"**{change}")
        page.wait_for_selector(".messagelist")

    outcomes = {decision: page.locator(".messagelist").inner_text() for decision, page in pages.items()}
    winners = [decision for decision, text in outcomes.items() if "already" not in text]
    assert len(winners) == 1, outcomes
    loser = "deny" if winners == ["approve"] else "approve"
    assert f"already {'approved' if winners == ['approve'] else 'denied'}" in outcomes[loser]
    held.refresh_from_db()
    assert held.status == (Payment.Status.SUCCEEDED if winners == ["approve"] else Payment.Status.CANCELED)
    assert AuditLog.objects.filter(entity_id=held.pk, action__startswith="review.").count() == 1


def test_the_dashboard_draws_its_charts_beside_the_numbers(signed_in, reviewer, customer, screenshot):
    for days_ago, token, amount in [
        (0, "tok_visa", 12_000),
        (0, "tok_chargeDeclined", 3_000),
        (1, "tok_visa", 45_000),
        (2, "tok_chargeDeclinedInsufficientFunds", 8_000),
        (3, "tok_visa", 22_500),
        (5, "tok_riskLevelElevated", 60_000),
        (6, "tok_mastercard", 9_900),
    ]:
        payment = payment_create(
            actor=customer, owner=customer, amount=amount, currency="USD", payment_method=token
        )
        Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(days=days_ago))

    for decision in ("approve", "approve", "deny"):
        decided = hold(customer, amount=15_000)
        review_decide(actor=reviewer, payment_id=decided.pk, decision=decision, note="seen")
        Payment.objects.filter(pk=decided.pk).update(created_at=timezone.now() - timedelta(days=4))

    page = signed_in(reviewer, next="/admin/dashboard/")
    page.wait_for_selector("body[data-charts-ready=true]")

    drawn = page.evaluate(
        "['chart-counts','chart-volumes','chart-decisions','chart-failures']"
        ".map(id => window.Chart.getChart(id).data.datasets.length)"
    )
    assert all(drawn)
    assert page.locator("#queue-size .value").inner_text() == "1"
    assert page.locator("#approval-rate .value").inner_text() == "66.7%"
    failures = page.locator("#table-failures tbody").inner_text()
    assert "card_declined" in failures
    assert "insufficient_funds" in failures
    today = page.locator("#table-counts tbody tr").first.inner_text()
    assert today.split()[-1] == "2"  # two payments today
    screenshot(page, "dashboard", full_page=True)


def test_the_admin_login_locks_out_a_guessing_browser_and_says_so(
    new_context, live_server, reviewer, settings
):
    settings.LOGIN_FAILURE_LIMIT = 3
    page = new_context().new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    for password in ("guess one", "guess two", "guess three", DEFAULT_PASSWORD):
        page.fill("#id_username", reviewer.email)
        page.fill("#id_password", password)
        page.click("input[type=submit]")
        page.wait_for_load_state()

    assert "Too many failed logins" in page.locator(".errornote").inner_text()
    assert page.url.startswith(f"{live_server.url}/admin/login/")
    failures = AuditLog.objects.filter(action="user.login_failed", entity_id=reviewer.pk)
    assert failures.count() == 3
    assert not AuditLog.objects.filter(action="user.logged_in", entity_id=reviewer.pk).exists()
