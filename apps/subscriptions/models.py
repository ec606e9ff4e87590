from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.crypto import EncryptedTextField
from apps.core.ids import PrefixedIdField
from apps.core.money import Money

BILLABLE_STATUSES = ("trialing", "active", "past_due")


class Subscription(models.Model):
    """A customer paying `amount` every `billing_cycle` with a stored payment method.

    Billing state (only `apps.subscriptions.services` writes it):
    - `current_period_start`/`_end` is the last period that was paid for (or the trial); before
      the first successful charge of a subscription without a trial, both are empty.
    - The period being collected next is number `next_period_index` counted from `billing_anchor`
      (see `apps.subscriptions.periods`); changing the cycle re-anchors at that period's start.
    - `due_at` is when the billing engine must look at it next: the end of the paid period (or
      trial), the next dunning retry while `past_due`, or the period end that
      `cancel_at_period_end` stops at. Empty once canceled or unpaid.
    - `dunning_attempt` counts the failed charges of the period being collected.
    - `billing_claimed_until` is a worker's lease on the row while it charges it, taken with
      `FOR UPDATE SKIP LOCKED` so concurrent billing passes share the work. Exactly-once charging
      never depends on it: the payment of a (subscription, period, attempt) is unique in the
      database and settling checks the period it charged is still the one being collected.
    - `pending_*` hold changes asked for with PATCH, applied when the next period is charged.
    """

    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"
        UNPAID = "unpaid", "Unpaid"

    class Cycle(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"
        YEARLY = "yearly", "Yearly"

    id = PrefixedIdField(prefix="sub")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions", db_index=False
    )
    plan_id = models.CharField(max_length=100)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    billing_cycle = models.CharField(max_length=10, choices=Cycle.choices)
    # A gateway token or `wallet:<id>`, encrypted at rest like payments' tokens.
    payment_method = EncryptedTextField()
    status = models.CharField(max_length=10, choices=Status.choices)
    metadata = models.JSONField(default=dict, blank=True)

    billing_anchor = models.DateTimeField()
    next_period_index = models.PositiveIntegerField(default=0)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    trial_end_date = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    dunning_attempt = models.PositiveSmallIntegerField(default=0)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    latest_payment_id = models.CharField(max_length=40, blank=True, default="")
    billing_claimed_until = models.DateTimeField(null=True, blank=True)

    pending_amount = models.BigIntegerField(null=True, blank=True)
    pending_billing_cycle = models.CharField(max_length=10, choices=Cycle.choices, blank=True, default="")
    pending_plan_id = models.CharField(max_length=100, blank=True, default="")
    pending_payment_method = EncryptedTextField(blank=True, default="")

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="subscription_amount_positive"),
            models.CheckConstraint(
                condition=Q(pending_amount__isnull=True) | Q(pending_amount__gt=0),
                name="subscription_pending_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(status__in=BILLABLE_STATUSES, due_at__isnull=False)
                | Q(status__in=["canceled", "unpaid"], due_at__isnull=True),
                name="subscription_due_iff_billable",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="subscription_owner_newest_idx"),
            # The billing pass's claim: due, billable, oldest first (ORDER BY due_at, id LIMIT n).
            models.Index(
                fields=["due_at", "id"],
                condition=Q(status__in=BILLABLE_STATUSES),
                name="subscription_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.price} {self.status}"

    @property
    def price(self) -> str:
        return f"{Money(self.amount, self.currency)} / {self.billing_cycle}"

    @property
    def next_billing_date(self) -> datetime | None:
        """When the next charge is due: none once it is ending, canceled or unpaid."""
        if self.status not in BILLABLE_STATUSES or self.cancel_at_period_end:
            return None
        return self.due_at

    @property
    def has_pending_update(self) -> bool:
        return bool(
            self.pending_amount is not None
            or self.pending_billing_cycle
            or self.pending_plan_id
            or self.pending_payment_method
        )
