"""The subscriptions pages of the admin: filters, next billing date, money, the payments of each."""

import pytest
from django.contrib.admin.utils import quote
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory

from .factories import at, payments_of

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:subscriptions_subscription_changelist")


@pytest.fixture
def staff(db):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True, roles=[Roles.ADMIN]))
    return client


def test_the_list_shows_price_status_and_next_billing_date_and_filters_by_status(staff, subscribe):
    active = subscribe(now=at("2026-05-31 10:00"), amount=123456)
    trialing = subscribe(now=at("2026-05-31 10:00"), trial_days=10, plan_id="starter")

    page = staff.get(LIST_URL).content.decode()
    assert "1,234.56 USD / monthly" in page
    assert "June 30, 2026" in page  # the active one's next billing date
    assert active.pk in page
    assert trialing.pk in page

    filtered = staff.get(LIST_URL, {"status__exact": "trialing"}).content.decode()
    assert trialing.pk in filtered
    assert active.pk not in filtered


def test_a_subscriptions_page_lists_its_payments_without_the_token(staff, subscribe, bill):
    subscription = subscribe(now=at("2026-05-31 10:00"), payment_method="tok_mastercard")
    bill(at("2026-06-30 10:00"))

    page = staff.get(reverse("admin:subscriptions_subscription_change", args=[quote(subscription.pk)]))

    assert page.status_code == 200
    text = page.content.decode()
    for payment in payments_of(subscription.pk):
        assert payment.pk in text
        assert payment.billing_period in text
    assert "15.00 USD" in text
    assert "tok_mastercard" not in text
    assert "card token" in text


def test_the_admin_cannot_add_change_or_delete_subscriptions(staff, subscribe):
    subscription = subscribe(now=at("2026-05-31 10:00"))
    assert staff.get(reverse("admin:subscriptions_subscription_add")).status_code == 403
    delete_url = reverse("admin:subscriptions_subscription_delete", args=[quote(subscription.pk)])
    assert staff.post(delete_url, {"post": "yes"}).status_code == 403
    assert staff.get(LIST_URL).status_code == 200
