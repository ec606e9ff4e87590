"""Outbound webhooks in the back office, in a real browser: the dashboard's success rate and
backlog, a delivery's attempts, and the retry action."""

from __future__ import annotations

import pytest

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory
from apps.events.models import WebhookDelivery
from apps.events.services import webhook_endpoint_create
from apps.payments.services import payment_create
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.browser


@pytest.fixture
def admin_user(transactional_db):
    return UserFactory(is_staff=True, roles=[Roles.ADMIN], email="ada.admin@example.com")


def test_staff_see_delivery_figures_and_retry_a_failing_delivery(signed_in, admin_user, screenshot, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    merchant = UserFactory(email="mia.merchant@example.com")
    with WebhookReceiver() as receiver:
        webhook_endpoint_create(
            actor=merchant, user=merchant, url=receiver.url, enabled_events=["payment.succeeded"]
        )
        payment_create(
            actor=merchant, owner=merchant, amount=1_000, currency="USD", payment_method="tok_visa"
        )
        receiver.behave("fail", status=503)
        payment_create(
            actor=merchant, owner=merchant, amount=2_000, currency="USD", payment_method="tok_visa"
        )
        failing = WebhookDelivery.objects.get(status="pending")

        # the dashboard: one delivered, one waiting for its retry
        page = signed_in(admin_user, next="/admin/dashboard/")
        page.wait_for_selector("body[data-charts-ready=true]")
        assert page.evaluate("window.Chart.getChart('chart-webhooks').data.datasets[0].data") == [1, 0, 1]
        assert page.locator("#webhook-success-rate").inner_text() == "100.0%"
        assert page.locator("#webhook-pending").inner_text() == "1"
        assert page.locator("#webhook-backlog").inner_text() == "0"  # its retry is not due yet
        screenshot(page, "dashboard-webhooks", full_page=True)

        # the delivery's page shows its attempt
        page.goto(
            page.url.replace("/admin/dashboard/", f"/admin/events/webhookdelivery/{failing.pk}/change/")
        )
        attempts = page.locator("#attempt_log-group").inner_text()
        assert "503" in attempts
        assert "answered 503" in attempts
        screenshot(page, "webhook-delivery")

        # retry from the list, the receiver back: delivered
        receiver.behave("ok")
        page.goto(page.url.split("/admin/")[0] + "/admin/events/webhookdelivery/?status__exact=pending")
        page.check(f"input[name=_selected_action][value={failing.pk}]")
        page.select_option("select[name=action]", "retry")
        page.click("button[name=index]")
        assert "1 delivery queued for a new attempt" in page.locator(".messagelist").inner_text()
        failing.refresh_from_db()
        assert (failing.status, failing.attempts) == ("succeeded", 2)
