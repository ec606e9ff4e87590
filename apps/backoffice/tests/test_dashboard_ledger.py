"""The dashboard's volumes against the ledger, for payments made through the API: a full capture,
a partial capture, a full refund and a partial refund (the simulated gateway, real services)."""

from collections import defaultdict
from datetime import UTC

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from apps.backoffice.selectors import dashboard_figures
from apps.ledger.models import Posting
from apps.payments.models import Payment, Refund

pytestmark = pytest.mark.django_db


def _post(client, path: str, body: dict) -> dict:
    response = client.post(path, body, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


@pytest.fixture
def payments(auth_client) -> dict[str, str]:
    def pay(amount: int, **body) -> str:
        return _post(
            auth_client,
            "/api/v1/payments",
            {"amount": amount, "currency": "usd", "payment_method": "tok_visa", **body},
        )["id"]

    made = {
        "full_capture": pay(2500),
        "partial_capture": pay(4000, capture_method="manual"),
        "refunded": pay(3000),
        "partly_refunded": pay(5000),
        "uncaptured": pay(7000, capture_method="manual"),
        "declined": pay(900, payment_method="tok_chargeDeclined"),
    }
    _post(auth_client, f"/api/v1/payments/{made['partial_capture']}/capture", {"amount": 1500})
    _post(auth_client, f"/api/v1/payments/{made['refunded']}/refunds", {})
    _post(auth_client, f"/api/v1/payments/{made['partly_refunded']}/refunds", {"amount": 2000})
    return made


def ledger_revenue(payment: Payment) -> int:
    """What the books keep of one payment: its platform_revenue postings (capture less refunds)."""
    memos = [f"payment {payment.pk}"] + [
        f"refund {pk}" for pk in Refund.objects.filter(payment=payment).values_list("pk", flat=True)
    ]
    total = Posting.objects.filter(account__code="platform_revenue", entry__memo__in=memos).aggregate(
        s=Sum("amount")
    )["s"]
    return total or 0


def test_succeeded_volume_is_captured_less_refunded_as_the_ledger_says(payments):
    statuses = {name: Payment.objects.get(pk=pk).status for name, pk in payments.items()}
    assert statuses == {
        "full_capture": "succeeded",
        "partial_capture": "succeeded",
        "refunded": "refunded",
        "partly_refunded": "succeeded",
        "uncaptured": "requires_capture",
        "declined": "failed",
    }

    figures = dashboard_figures()

    today = figures.days.index(timezone.now().astimezone(UTC).date())
    per_status_ledger: dict[str, int] = defaultdict(int)
    for payment in Payment.objects.all():
        per_status_ledger[payment.status] += ledger_revenue(payment)
    # what a member of staff reads: 25.00 + 15.00 (not 40.00) + 30.00 (50.00 less 20.00 refunded)
    assert figures.volumes["succeeded"][today] == 2500 + 1500 + 3000
    assert figures.volumes["refunded"][today] == 0
    for status in ("succeeded", "refunded"):
        assert figures.volumes[status][today] == per_status_ledger[status], status
    # the captured statuses add up to the platform's revenue account
    revenue = Posting.objects.filter(account__code="platform_revenue", currency="USD").aggregate(
        s=Sum("amount")
    )["s"]
    assert figures.volumes["succeeded"][today] + figures.volumes["refunded"][today] == revenue
    # nothing was captured of the others: the ledger holds nothing for them, the figure is the amount asked
    assert per_status_ledger["requires_capture"] == per_status_ledger["failed"] == 0
    assert figures.volumes["requires_capture"][today] == 7000
    assert figures.volumes["failed"][today] == 900
    # and the counts
    assert figures.counts["succeeded"][today] == 3
    assert figures.counts["refunded"][today] == 1


def test_the_page_prints_the_net_succeeded_volume(payments, admin_client):
    page = admin_client.get(reverse("backoffice:dashboard")).content.decode()

    today = timezone.now().astimezone(UTC).date().isoformat()
    volumes_table = page.split('id="table-volumes"')[1].split("</table>")[0]
    row = volumes_table.split(f'<tr data-day="{today}">')[1].split("</tr>")[0]
    cells = row.split('<td class="num">')[1:]
    shown = [cell.split("</td>")[0] for cell in cells]
    # succeeded 70.00 (not 110.00: 25 + 40 authorized + 50 before its refund), refunded 0.00
    assert "70.00 USD" in shown
    assert "110.00 USD" not in row
    assert "captured less refunded" in page
