"""Payouts: money leaving a wallet for a bank account at the gateway.

    POST /wallets/{id}/payouts ─► pending ──(worker claims it)──► in_transit ─► paid
        │ (the amount leaves the wallet at once,          │                     └► failed (reversed)
        │  held in the `payouts_in_transit` account)      └ gateway retries: schedule in next_attempt_at
        ├─ held for review (risk): pending until a reviewer decides ─ approve ─► (worker) ─► in_transit …
        │                                                            └ deny ────► canceled (reversed)
        └─ cancel while pending (owner) ─► canceled (reversed)

The ledger (apps.payouts.migrations.0002): creation posts wallet → `payouts_in_transit`; `paid`
posts in_transit → the gateway's `gateway_clearing` account; `failed` and `canceled` post a new,
reversing entry in_transit → wallet. So the in-transit account's balance is always the sum of the
open (pending or in_transit) payouts, which `manage.py verify_ledger` proves.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.crypto import EncryptedTextField
from apps.core.ids import PrefixedIdField
from apps.wallets.models import Wallet

IN_TRANSIT_ACCOUNT = "payouts_in_transit"


class Payout(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_TRANSIT = "in_transit", "In transit"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    class ReviewStatus(models.TextChoices):
        NONE = "", "Not held"
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        WITHDRAWN = "withdrawn", "Withdrawn (canceled by its owner before a decision)"

    OPEN_STATUSES = (Status.PENDING, Status.IN_TRANSIT)

    id = PrefixedIdField(prefix="po")
    # The owner is the wallet's user: every read is scoped through it.
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="payouts", db_index=False)
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Where the money goes: the gateway's token for a bank account (never account or card numbers),
    # encrypted at rest, and what the API shows of it.
    destination_token = EncryptedTextField()
    destination_type = models.CharField(max_length=32, default="bank_account")
    destination_last4 = models.CharField(max_length=4, blank=True, default="")
    failure_code = models.CharField(max_length=64, null=True, blank=True)
    failure_message = models.CharField(max_length=500, null=True, blank=True)
    gateway = models.CharField(max_length=20)
    gateway_reference = models.CharField(max_length=255, blank=True, default="")
    # The worker's schedule, in the database (not in a broker's countdown): gateway calls made so far
    # and when the next is due (NULL: none scheduled).
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Held for review by the risk rules: why, and the reviewer's decision.
    review_reasons = models.JSONField(default=list, blank=True)
    review_status = models.CharField(max_length=16, choices=ReviewStatus.choices, blank=True, default="")
    review_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    review_note = models.TextField(blank=True, default="")
    review_decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "in_transit", "paid", "failed", "canceled"]),
                name="payout_status_known",
            ),
            # Held for review, a payout never reaches the gateway before a reviewer approves it.
            models.CheckConstraint(
                condition=~Q(review_status="open") | Q(status="pending"),
                name="payout_open_review_not_sent",
            ),
        ]
        indexes = [
            models.Index(fields=["wallet", "-created_at", "-id"], name="payout_wallet_newest_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "in_transit"]),
                name="payout_open_due_idx",
            ),
            models.Index(fields=["-created_at", "-id"], name="payout_newest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def held_for_review(self) -> bool:
        return self.review_status == self.ReviewStatus.OPEN
