"""Reads for staff: the dashboard's figures and the whole story of one payment under review.

Staff see every customer's data here, so these selectors take no principal: the views that call
them are behind the admin's staff login (and the payment page behind the payment view permission).
Figures are computed by the database (GROUP BY, COUNT, SUM); Python only folds the grouped rows
into per-day series, so the cost does not grow with the number of payments in a day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.audit.selectors import audit_trail_for
from apps.core.money import CURRENCY_EXPONENTS, Money
from apps.gateways.models import GatewayAttempt
from apps.payments.models import Payment, Refund, Review
from apps.wallets.models import Wallet

DASHBOARD_DAYS = 30
RECENT_PAYMENTS = 10
AUDIT_ROWS = 200

# Lifecycle order, so series and table columns read left to right the way a payment moves.
STATUS_ORDER = list(Payment.Status.values)


@dataclass(frozen=True)
class DashboardFigures:
    """What the dashboard shows. Days are UTC calendar days, oldest first, today last."""

    days: list[date]
    statuses: list[str]  # the statuses that occur in the window, in lifecycle order
    counts: dict[str, list[int]]  # status -> payments created that day
    currencies: list[str]  # currencies that occur in the window, most payments first
    currency: str | None  # the currency of `volumes`
    volumes: dict[str, list[int]]  # status -> sum of `amount` (minor units of `currency`) per day
    queue_size: int
    oldest_in_queue: datetime | None
    approved: int  # reviews decided in the window
    denied: int
    median_time_to_decision: timedelta | None
    failures: list[tuple[str, int]] = field(default_factory=list)  # (failure_code, count), most first

    @property
    def decided(self) -> int:
        return self.approved + self.denied

    @property
    def approval_rate_percent(self) -> Decimal | None:
        if not self.decided:
            return None
        return (Decimal(100 * self.approved) / self.decided).quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def currency_exponent(self) -> int:
        return CURRENCY_EXPONENTS[self.currency] if self.currency else 0

    def day_rows(self) -> list[dict[str, Any]]:
        """One row per day for the tables beside the charts, newest first."""
        rows = []
        for index in reversed(range(len(self.days))):
            counts = [self.counts[status][index] for status in self.statuses]
            volumes = [self.volumes[status][index] for status in self.statuses]
            rows.append(
                {
                    "day": self.days[index],
                    "counts": counts,
                    "count_total": sum(counts),
                    "volumes": [self._money(amount) for amount in volumes],
                    "volume_total": self._money(sum(volumes)),
                }
            )
        return rows

    def _money(self, amount: int) -> str:
        return str(Money(amount, self.currency)) if self.currency else "0"


def dashboard_window(
    *, now: datetime | None = None, days: int = DASHBOARD_DAYS
) -> tuple[datetime, list[date]]:
    """The first instant of the window (midnight UTC, `days - 1` days ago) and its days."""
    today = (now or timezone.now()).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    return datetime.combine(first, datetime.min.time(), tzinfo=UTC), [
        first + timedelta(days=offset) for offset in range(days)
    ]


def dashboard_figures(
    *, currency: str | None = None, now: datetime | None = None, days: int = DASHBOARD_DAYS
) -> DashboardFigures:
    start, day_list = dashboard_window(now=now, days=days)
    in_window = Payment.objects.filter(created_at__gte=start)

    grouped = (
        in_window.annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "status", "currency")
        .annotate(count=Count("pk"), volume=Sum("amount"))
        .order_by()
    )
    index_of = {day: position for position, day in enumerate(day_list)}
    counts = {status: [0] * days for status in STATUS_ORDER}
    payments_per_currency: dict[str, int] = {}
    volume_rows = []
    for row in grouped:
        position = index_of.get(row["day"])
        if position is None:  # created "in the future" by a skewed clock: not a day we draw
            continue
        counts[row["status"]][position] += row["count"]
        payments_per_currency[row["currency"]] = payments_per_currency.get(row["currency"], 0) + row["count"]
        volume_rows.append((position, row))

    currencies = sorted(payments_per_currency, key=lambda code: (-payments_per_currency[code], code))
    if currency not in payments_per_currency:
        currency = currencies[0] if currencies else None
    volumes = {status: [0] * days for status in STATUS_ORDER}
    for position, row in volume_rows:
        if row["currency"] == currency:
            volumes[row["status"]][position] += row["volume"]
    statuses = [status for status in STATUS_ORDER if any(counts[status])]

    queue = Payment.objects.filter(status=Payment.Status.IN_REVIEW).aggregate(
        size=Count("pk"), oldest=Min("created_at")
    )
    decided = Review.objects.filter(decided_at__gte=start).exclude(status=Review.Status.OPEN)
    decisions = decided.aggregate(
        approved=Count("pk", filter=Q(status=Review.Status.APPROVED)),
        denied=Count("pk", filter=Q(status=Review.Status.DENIED)),
    )
    failures = (
        in_window.filter(status=Payment.Status.FAILED)
        .values("failure_code")
        .annotate(count=Count("pk"))
        .order_by("-count", "failure_code")
    )
    return DashboardFigures(
        days=day_list,
        statuses=statuses,
        counts={status: counts[status] for status in statuses},
        currencies=currencies,
        currency=currency,
        volumes={status: volumes[status] for status in statuses},
        queue_size=queue["size"],
        oldest_in_queue=queue["oldest"],
        approved=decisions["approved"],
        denied=decisions["denied"],
        median_time_to_decision=_median_duration(decided),
        failures=[(row["failure_code"] or "(none)", row["count"]) for row in failures],
    )


def _median_duration(decided: QuerySet[Review]) -> timedelta | None:
    """The median of decided_at - opened_at, read as the middle row(s) of the sorted durations.

    PostgreSQL has percentile_cont but SQLite (the embedded default) has no median at all; a count
    and one sorted slice of at most two rows work on both and never load the whole set.
    """
    total = decided.count()
    if not total:
        return None
    durations = decided.annotate(
        waited=ExpressionWrapper(F("decided_at") - F("opened_at"), output_field=DurationField())
    ).order_by("waited", "pk")
    middle = list(durations.values_list("waited", flat=True)[(total - 1) // 2 : total // 2 + 1])
    return sum(middle, timedelta()) / len(middle)


# --- one payment's story ------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentStory:
    review: Review | None
    customer_totals: dict[str, int]  # status -> how many of the customer's payments
    recent_payments: list[Payment]  # the customer's other payments, newest first
    wallets: list[Wallet]
    gateway_attempts: list[GatewayAttempt]
    refunds: list[Refund]
    audit_trail: list[AuditLog]


def payment_story(*, payment: Payment) -> PaymentStory:
    """Everything a reviewer reads before deciding: the customer's history, the gateway, the trail."""
    customer_payments = Payment.objects.filter(owner_id=payment.owner_id)
    totals = customer_payments.values("status").annotate(count=Count("pk")).order_by()
    return PaymentStory(
        review=Review.objects.select_related("decided_by").filter(payment=payment).first(),
        customer_totals={row["status"]: row["count"] for row in totals},
        recent_payments=list(
            customer_payments.exclude(pk=payment.pk).order_by("-created_at", "-id")[:RECENT_PAYMENTS]
        ),
        wallets=list(Wallet.objects.filter(user_id=payment.owner_id).order_by("currency")),
        gateway_attempts=list(
            GatewayAttempt.objects.filter(subject_id=payment.pk).order_by("created_at", "id")
        ),
        refunds=list(payment.refunds.order_by("created_at", "id")),
        audit_trail=list(audit_trail_for(entity_type="payment", entity_id=payment.pk)[:AUDIT_ROWS]),
    )
