from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.crypto import EncryptedTextField
from apps.core.ids import PrefixedIdField
from apps.ledger.models import JournalEntry, LedgerAccount


class Wallet(models.Model):
    """A user's money in one currency.

    `balance` is a cache of the ledger account's balance (the sum of its postings), kept in the
    same transaction as every entry and proven equal by `manage.py verify_ledger`; it exists so a
    transfer can check funds on the row it has locked, and the database refuses it below zero.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FROZEN = "frozen", "Frozen"

    id = PrefixedIdField(prefix="wal")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallets")
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField(default=0, help_text="Minor units; a cache of the ledger account.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    ledger_account = models.OneToOneField(LedgerAccount, on_delete=models.PROTECT, related_name="wallet")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_non_negative"),
            models.UniqueConstraint(fields=["user", "currency"], name="wallet_one_per_user_currency"),
        ]
        indexes = [models.Index(fields=["user", "-created_at", "-id"], name="wallet_user_newest_idx")]
        permissions = [("freeze_wallet", "Can freeze and unfreeze wallets")]

    def __str__(self) -> str:
        return f"{self.id} ({self.currency})"


FREEZE_PERMISSION = "wallets.freeze_wallet"


class Transaction(models.Model):
    """A deposit into a wallet or a transfer between two, as the wallet's owner sees it."""

    class Type(models.TextChoices):
        DEPOSIT = "deposit", "Deposit"
        TRANSFER = "transfer", "Transfer"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        # A deposit held by risk rules: the card only authorized, nothing credited, until a
        # reviewer approves (captured, credited) or denies (voided, failed) it.
        IN_REVIEW = "in_review", "In review"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class Operation(models.TextChoices):
        """The gateway step a pending deposit waits for; blank: its charge (authorize)."""

        CAPTURE = "capture", "Capture (review approved)"
        VOID = "void", "Void (review denied)"

    id = PrefixedIdField(prefix="txn")
    type = models.CharField(max_length=16, choices=Type.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    source_wallet = models.ForeignKey(
        Wallet,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="outgoing_transactions",
        db_index=False,  # led by txn_source_newest_idx
    )
    destination_wallet = models.ForeignKey(
        Wallet,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="incoming_transactions",
        db_index=False,  # led by txn_dest_newest_idx
    )
    description = models.CharField(max_length=500, null=True, blank=True)
    failure_code = models.CharField(max_length=64, null=True, blank=True)
    failure_message = models.CharField(max_length=500, null=True, blank=True)
    gateway_reference = models.CharField(max_length=255, blank=True, default="")
    # A deposit's card charge, kept so the worker can retry it and reconciliation can settle it.
    gateway = models.CharField(max_length=20, blank=True, default="")
    payment_method_token = EncryptedTextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Retryable gateway failures so far.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Why risk rules hold the deposit for review (then the card is only authorized), and the step a
    # reviewer's decision left to do at the gateway.
    risk_reasons = models.JSONField(default=list, blank=True)
    pending_operation = models.CharField(max_length=10, choices=Operation.choices, blank=True, default="")
    reconcile_reason = models.CharField(
        max_length=32, blank=True, default="", help_text="Why a pending deposit waits for reconciliation."
    )
    journal_entry = models.OneToOneField(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="wallet_transaction"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="transaction_amount_positive"),
            models.CheckConstraint(
                condition=(
                    Q(type="deposit", source_wallet__isnull=True, destination_wallet__isnull=False)
                    | Q(type="transfer", source_wallet__isnull=False, destination_wallet__isnull=False)
                ),
                name="transaction_wallets_match_type",
            ),
            # Money moved exactly when the transaction completed.
            models.CheckConstraint(
                condition=Q(status="completed", journal_entry__isnull=False)
                | (~Q(status="completed") & Q(journal_entry__isnull=True)),
                name="transaction_completed_has_entry",
            ),
        ]
        indexes = [
            models.Index(fields=["source_wallet", "-created_at", "-id"], name="txn_source_newest_idx"),
            models.Index(fields=["destination_wallet", "-created_at", "-id"], name="txn_dest_newest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"
