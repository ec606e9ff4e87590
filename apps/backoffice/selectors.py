"""The staff dashboard's figures, folded from payments' (and payouts') public selectors.

Staff see every customer's data here, so this takes no principal: the view that calls it is behind
the admin's staff login. The aggregates are computed by the database (`apps.payments.selectors`);
Python only folds the grouped rows into per-day series, so the cost does not grow with the number
of payments in a day. (One payment's story for reviewers is `apps.payments.selectors.payment_story`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import timezone

from apps.core.money import CURRENCY_EXPONENTS, Money
from apps.events.selectors import DeliveryFigures, delivery_figures
from apps.payments.selectors import (
    PAYMENT_STATUSES,
    payment_daily_totals,
    payment_failure_counts,
    review_decisions,
    review_queue,
)
from apps.payouts.selectors import payout_status_counts, payouts_held_for_review

DASHBOARD_DAYS = 30
# Statuses whose money was captured: their volume is what the books keep, captured less refunded
# (a partial capture counts what was captured, a partial refund is taken off; a refunded payment
# keeps 0). Every other status captured nothing: its volume is the amount asked.
CAPTURED_STATUSES = frozenset({"succeeded", "refunded"})
# Lifecycle order, so series and table columns read left to right the way a payment moves.
STATUS_ORDER = PAYMENT_STATUSES


@dataclass(frozen=True)
class DashboardFigures:
    """What the dashboard shows. Days are UTC calendar days, oldest first, today last."""

    days: list[date]
    statuses: list[str]  # the statuses that occur in the window, in lifecycle order
    counts: dict[str, list[int]]  # status -> payments created that day
    currencies: list[str]  # currencies that occur in the window, most payments first
    currency: str | None  # the currency of `volumes`
    # status -> minor units of `currency` per day: captured less refunded for CAPTURED_STATUSES
    # (the platform revenue the ledger holds for them), the amount asked for the others
    volumes: dict[str, list[int]]
    queue_size: int
    oldest_in_queue: datetime | None
    approved: int  # reviews decided in the window
    denied: int
    median_time_to_decision: timedelta | None
    failures: list[tuple[str, int]] = field(default_factory=list)  # (failure_code, count), most first
    webhooks: DeliveryFigures | None = None  # outbound webhook deliveries in the window, and the backlog
    payouts: dict[str, int] = field(default_factory=dict)  # status -> payouts created in the window
    payouts_held: int = 0  # payouts waiting for a reviewer now
    oldest_payout_held: datetime | None = None

    @property
    def payouts_total(self) -> int:
        return sum(self.payouts.values())

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


def _volume(row: dict[str, Any]) -> int:
    if row["status"] in CAPTURED_STATUSES:
        return int(row["captured"] - row["refunded"])
    return int(row["volume"])


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
    index_of = {day: position for position, day in enumerate(day_list)}
    counts = {status: [0] * days for status in STATUS_ORDER}
    payments_per_currency: dict[str, int] = {}
    volume_rows = []
    for row in payment_daily_totals(since=start):
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
            volumes[row["status"]][position] += _volume(row)
    statuses = [status for status in STATUS_ORDER if any(counts[status])]

    queue_size, oldest_in_queue = review_queue()
    payouts_held, oldest_payout_held = payouts_held_for_review()
    decisions = review_decisions(since=start)
    return DashboardFigures(
        days=day_list,
        statuses=statuses,
        counts={status: counts[status] for status in statuses},
        currencies=currencies,
        currency=currency,
        volumes={status: volumes[status] for status in statuses},
        queue_size=queue_size,
        oldest_in_queue=oldest_in_queue,
        approved=decisions.approved,
        denied=decisions.denied,
        median_time_to_decision=decisions.median_time_to_decision,
        failures=payment_failure_counts(since=start),
        webhooks=delivery_figures(since=start),
        payouts=payout_status_counts(since=start),
        payouts_held=payouts_held,
        oldest_payout_held=oldest_payout_held,
    )
