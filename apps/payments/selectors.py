"""Reads of payments: scoped to who asks for the API (owners see their own, reviewers see all);
the work reconciliation must pick up; and, for staff, the dashboard's aggregates and one payment's
whole story (those take no principal: their callers are behind the admin's staff login)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.accounts.selectors import user_has_permission
from apps.audit.models import AuditLog
from apps.audit.selectors import audit_trail_for
from apps.core.errors import InvalidRequest
from apps.core.models import OutboxEvent
from apps.core.timestamps import parse_instant
from apps.gateways.models import GatewayAttempt
from apps.gateways.selectors import gateway_attempts_for
from apps.payments.errors import PaymentNotFound
from apps.payments.models import PROCESSING_REQUESTED, Payment, Refund, Review
from apps.wallets.models import Transaction, Wallet
from apps.wallets.selectors import wallets_of_user

# Reviewers decide reviews and see every payment.
REVIEW_PERMISSION = "payments.review_payment"
# Lifecycle order, so series and tables read left to right the way a payment moves.
PAYMENT_STATUSES = list(Payment.Status.values)
RECENT_PAYMENTS = 10
AUDIT_ROWS = 200
FILTERS = ("status", "customer_id", "created_gte", "created_lt", "subscription")


def can_see_all_payments(user: Any) -> bool:
    return user_has_permission(user, REVIEW_PERMISSION)


def _visible(principal: Any) -> QuerySet[Payment]:
    queryset = Payment.objects.select_related("review", "review__decided_by")
    return queryset if can_see_all_payments(principal) else queryset.filter(owner=principal)


def parse_payment_filters(query_params: Any) -> dict[str, str]:
    """Validated filters, in a canonical form (also the list cache's key)."""
    filters = {name: query_params[name] for name in FILTERS if query_params.get(name) not in (None, "")}
    if "status" in filters and filters["status"] not in Payment.Status.values:
        raise InvalidRequest(f"status must be one of: {', '.join(Payment.Status.values)}", param="status")
    for name in ("created_gte", "created_lt"):
        if name in filters:
            filters[name] = parse_instant(name, filters[name]).isoformat()
    return filters


def payment_list(*, principal: Any, filters: dict[str, str]) -> QuerySet[Payment]:
    queryset = _visible(principal)
    if "status" in filters:
        queryset = queryset.filter(status=filters["status"])
    if "customer_id" in filters:
        queryset = queryset.filter(customer_id=filters["customer_id"])
    if "subscription" in filters:
        queryset = queryset.filter(subscription_id=filters["subscription"])
    if "created_gte" in filters:
        queryset = queryset.filter(created_at__gte=filters["created_gte"])
    if "created_lt" in filters:
        queryset = queryset.filter(created_at__lt=filters["created_lt"])
    return queryset


def payment_get(*, principal: Any, payment_id: str) -> Payment:
    payment = _visible(principal).filter(pk=payment_id).first()
    if payment is None:
        raise PaymentNotFound(f"No such payment: '{payment_id}'")
    return payment


# --- work nobody is coming back for (reconciliation) ----------------------------------------------


def payments_stuck(*, older_than: timedelta) -> list[str]:
    """Payments left `pending`/`processing` with no step under way and no retry to come.

    A step in a request takes seconds; a retry is due at `next_attempt_at`. Past either by the
    grace period (PAYMENT_STUCK_AFTER_SECONDS, and at least `older_than`), nobody is coming back for
    the payment (a crashed process, a retry lost with the broker), so it goes to reconciliation.
    """
    now = timezone.now()
    cutoff = now - max(older_than, timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS))
    no_retry_due = Q(next_attempt_at__isnull=True, updated_at__lte=cutoff) | Q(next_attempt_at__lte=cutoff)
    # An asynchronous payment whose step the outbox has not yet handed to the payments queue (the
    # broker is down) is coming: the sweep will deliver its event, and its step then runs.
    step_still_in_the_outbox = OutboxEvent.objects.filter(
        aggregate_type="payment", event_type=PROCESSING_REQUESTED, delivered_at__isnull=True
    ).values("aggregate_id")
    return list(
        Payment.objects.filter(no_retry_due, status__in=[Payment.Status.PENDING, Payment.Status.PROCESSING])
        .exclude(pk__in=step_still_in_the_outbox)
        .values_list("pk", flat=True)
    )


def refunds_stuck(*, older_than: timedelta) -> list[str]:
    """Refunds still pending past the grace period: their retry was lost (a broker outage, a crash).

    Running them again is safe: a refund's gateway call carries the refund's id as its key.
    """
    cutoff = timezone.now() - max(older_than, timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS))
    return list(
        Refund.objects.filter(status=Refund.Status.PENDING, updated_at__lte=cutoff).values_list(
            "pk", flat=True
        )
    )


def payments_to_reconcile(*, older_than: timedelta) -> list[str]:
    return list(
        Payment.objects.filter(status=Payment.Status.RECONCILE, updated_at__lte=timezone.now() - older_than)
        .order_by("updated_at")
        .values_list("pk", flat=True)
    )


# --- for staff: the dashboard's aggregates ------------------------------------------------------
# Computed by the database (GROUP BY, COUNT, SUM), so the cost does not grow with the payments a day.


def payment_daily_totals(*, since: datetime) -> list[dict[str, Any]]:
    """Payments created since `since`, per UTC day, status and currency: `day, status, currency,
    count, volume, captured, refunded` (the sums of `amount`, `amount_captured`, `amount_refunded`)."""
    return list(
        Payment.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "status", "currency")
        .annotate(
            count=Count("pk"),
            volume=Sum("amount"),
            captured=Sum("amount_captured"),
            refunded=Sum("amount_refunded"),
        )
        .order_by()
    )


def review_queue() -> tuple[int, datetime | None]:
    """How many payments and deposits wait for review (one queue), and since when the oldest has."""
    payments = Payment.objects.filter(status=Payment.Status.IN_REVIEW).aggregate(
        size=Count("pk"), oldest=Min("created_at")
    )
    deposits = Transaction.objects.filter(
        type=Transaction.Type.DEPOSIT, status=Transaction.Status.IN_REVIEW
    ).aggregate(size=Count("pk"), oldest=Min("created_at"))
    oldest = [when for when in (payments["oldest"], deposits["oldest"]) if when is not None]
    return payments["size"] + deposits["size"], min(oldest, default=None)


@dataclass(frozen=True)
class ReviewDecisions:
    approved: int
    denied: int
    median_time_to_decision: timedelta | None


def review_decisions(*, since: datetime) -> ReviewDecisions:
    """Reviews decided since `since`: how many each way, and the median wait for a decision."""
    decided = Review.objects.filter(decided_at__gte=since).exclude(status=Review.Status.OPEN)
    counts = decided.aggregate(
        approved=Count("pk", filter=Q(status=Review.Status.APPROVED)),
        denied=Count("pk", filter=Q(status=Review.Status.DENIED)),
    )
    return ReviewDecisions(
        approved=counts["approved"], denied=counts["denied"], median_time_to_decision=_median_wait(decided)
    )


def _median_wait(decided: QuerySet[Review]) -> timedelta | None:
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


def payment_failure_counts(*, since: datetime) -> list[tuple[str, int]]:
    """(failure_code, count) of payments created since `since` that failed, most first."""
    failures = (
        Payment.objects.filter(created_at__gte=since, status=Payment.Status.FAILED)
        .values("failure_code")
        .annotate(count=Count("pk"))
        .order_by("-count", "failure_code")
    )
    return [(row["failure_code"] or "(none)", row["count"]) for row in failures]


# --- for staff: one payment's story -------------------------------------------------------------


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
        wallets=list(wallets_of_user(user_id=payment.owner_id)),
        gateway_attempts=list(gateway_attempts_for(subject_id=payment.pk)),
        refunds=list(payment.refunds.order_by("created_at", "id")),
        audit_trail=list(audit_trail_for(entity_type="payment", entity_id=payment.pk)[:AUDIT_ROWS]),
    )
