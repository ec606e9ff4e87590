"""The dashboard's figures against the same figures computed here from the raw rows."""

import random
import statistics
from collections import Counter, defaultdict
from datetime import UTC, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Roles
from apps.accounts.tests.factories import UserFactory
from apps.backoffice.selectors import dashboard_figures
from apps.payments.models import Payment, Review

pytestmark = pytest.mark.django_db

DASHBOARD_URL = reverse("backoffice:dashboard")
FAILURE_CODES = ["card_declined", "insufficient_funds", "gateway_unavailable"]


@pytest.fixture
def now():
    # Mid-afternoon, so "N days ago ± a few hours" never crosses midnight by accident.
    return timezone.now().astimezone(UTC).replace(hour=15, minute=0, second=0, microsecond=0)


@pytest.fixture
def seeded(now):
    """A mix of payments over the last 40 days: statuses, currencies, failures, decided reviews."""
    rng = random.Random(20240605)
    owners = [UserFactory() for _ in range(3)]
    statuses = ["succeeded", "failed", "in_review", "canceled", "refunded", "requires_capture"]
    for _ in range(120):
        status = rng.choice(statuses)
        created = now - timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 14))
        amount = rng.randint(1, 500_000)
        # consistent rows: a succeeded payment captured all or part, maybe refunded some of it
        captured = refunded = 0
        if status in ("succeeded", "refunded"):
            captured = amount if rng.random() < 0.5 else rng.randint(1, amount)
        if status == "refunded":
            refunded = captured
        elif status == "succeeded" and rng.random() < 0.4:
            refunded = rng.randint(1, captured) - 1
        payment = Payment.objects.create(
            owner=rng.choice(owners),
            amount=amount,
            amount_captured=captured,
            amount_refunded=refunded,
            currency=rng.choice(["USD", "USD", "EUR", "JPY"]),
            status=status,
            capture_method="automatic",
            method_type="card",
            failure_code=rng.choice(FAILURE_CODES) if status == "failed" else "",
            created_at=created,
        )
        if status in ("in_review", "succeeded", "canceled") and rng.random() < 0.6:
            opened = created + timedelta(seconds=rng.randint(1, 60))
            decided = status != "in_review"
            Review.objects.create(
                payment=payment,
                status={"succeeded": "approved", "canceled": "denied"}.get(status, "open"),
                reasons=["gateway_elevated_risk"],
                opened_at=opened,
                decided_at=opened + timedelta(minutes=rng.randint(1, 600)) if decided else None,
            )
    return owners


def expected_figures(now):
    """The dashboard's figures, from every row, in plain Python."""
    first_day = now.date() - timedelta(days=29)
    start = now.replace(hour=0) - timedelta(days=29)
    payments = [p for p in Payment.objects.all() if p.created_at.astimezone(UTC).date() >= first_day]
    counts = Counter((p.created_at.astimezone(UTC).date(), p.status) for p in payments)
    currency_counts = Counter(p.currency for p in payments)
    top_currency = sorted(currency_counts, key=lambda code: (-currency_counts[code], code))[0]
    volumes = defaultdict(int)
    for p in payments:
        if p.currency == top_currency:
            kept = (
                p.amount_captured - p.amount_refunded if p.status in ("succeeded", "refunded") else p.amount
            )
            volumes[(p.created_at.astimezone(UTC).date(), p.status)] += kept
    decided = [r for r in Review.objects.all() if r.decided_at and r.decided_at >= start]
    return {
        "counts": counts,
        "volumes": volumes,
        "currency": top_currency,
        "queue": sum(1 for p in Payment.objects.all() if p.status == "in_review"),
        "approved": sum(1 for r in decided if r.status == "approved"),
        "denied": sum(1 for r in decided if r.status == "denied"),
        "median": statistics.median(r.decided_at - r.opened_at for r in decided),
        "failures": Counter(p.failure_code for p in payments if p.status == "failed"),
    }


def test_dashboard_figures_equal_the_databases(seeded, now):
    expected = expected_figures(now)

    figures = dashboard_figures(now=now)

    assert len(figures.days) == 30
    assert figures.days[-1] == now.date()
    for index, day in enumerate(figures.days):
        for status in Payment.Status.values:
            count = figures.counts[status][index] if status in figures.statuses else 0
            volume = figures.volumes[status][index] if status in figures.statuses else 0
            assert count == expected["counts"][(day, status)], (day, status)
            assert volume == expected["volumes"][(day, status)], (day, status)
    assert sum(expected["counts"].values()) == sum(sum(series) for series in figures.counts.values())
    assert figures.currency == expected["currency"]
    assert figures.queue_size == expected["queue"]
    assert (figures.approved, figures.denied) == (expected["approved"], expected["denied"])
    assert figures.median_time_to_decision == expected["median"]
    assert dict(figures.failures) == dict(expected["failures"])
    assert [count for _, count in figures.failures] == sorted(expected["failures"].values(), reverse=True)
    rate = figures.approval_rate_percent
    assert abs(float(rate) - 100 * expected["approved"] / (expected["approved"] + expected["denied"])) <= 0.05


def test_volume_of_another_currency_on_request(seeded, now):
    figures = dashboard_figures(now=now, currency="JPY")

    jpy = sum(
        p.amount_captured - p.amount_refunded if p.status in ("succeeded", "refunded") else p.amount
        for p in Payment.objects.filter(currency="JPY")
        if p.created_at.astimezone(UTC).date() >= now.date() - timedelta(days=29)
    )
    assert figures.currency == "JPY"
    assert sum(sum(series) for series in figures.volumes.values()) == jpy


def test_an_empty_platform_has_an_empty_dashboard(db):
    figures = dashboard_figures()

    assert figures.statuses == []
    assert figures.currency is None
    assert figures.queue_size == 0
    assert figures.median_time_to_decision is None
    assert figures.approval_rate_percent is None


def test_the_page_prints_the_figures_beside_the_charts(seeded, now, admin_client):
    figures = dashboard_figures()

    page = admin_client.get(DASHBOARD_URL).content.decode()

    assert '<canvas id="chart-counts"' in page
    assert "vendor/chartjs/chart.umd.min.js" in page
    assert 'id="dashboard-data"' in page
    assert f'<span class="value">{figures.queue_size}</span>' in page
    assert f"{figures.approval_rate_percent}%" in page
    for code, count in figures.failures:
        assert f'<code>{code}</code></td><td class="num">{count}</td>' in page


def test_only_staff_with_the_dashboard_permission_see_the_dashboard(client, user):
    anonymous = client.get(DASHBOARD_URL)
    client.force_login(user)
    customer = client.get(DASHBOARD_URL)
    plain_staff, reviewer, admin = Client(), Client(), Client()
    plain_staff.force_login(UserFactory(is_staff=True))
    reviewer.force_login(UserFactory(is_staff=True, roles=[Roles.REVIEWER]))
    admin.force_login(UserFactory(is_staff=True, roles=[Roles.ADMIN]))

    assert anonymous.status_code == customer.status_code == 302
    assert customer["Location"].startswith(reverse("admin:login"))
    assert plain_staff.get(DASHBOARD_URL).status_code == 403
    assert reviewer.get(DASHBOARD_URL).status_code == 200
    assert admin.get(DASHBOARD_URL).status_code == 200


def test_the_admin_links_the_dashboard_only_for_those_who_may_open_it(db):
    plain_staff, reviewer = Client(), Client()
    plain_staff.force_login(UserFactory(is_staff=True))
    reviewer.force_login(UserFactory(is_staff=True, roles=[Roles.REVIEWER]))

    assert DASHBOARD_URL not in plain_staff.get(reverse("admin:index")).content.decode()
    assert DASHBOARD_URL in reviewer.get(reverse("admin:index")).content.decode()
