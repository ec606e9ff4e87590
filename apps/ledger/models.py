"""The double-entry journal: accounts, entries and their postings.

Sign convention (the one place it is defined): a posting *adds* its signed `amount` (minor units)
to its account's balance, and every entry's postings sum to zero per currency. So money moving
from X to Y is `(X, -n), (Y, +n)`. A wallet account's balance is what its owner holds (>= 0); a
system account stands for the outside world and usually runs negative: `gateway_clearing` at
-1,000 USD means card networks have paid 1,000 USD into Paydesk wallets. Each currency's book
(all postings in it) therefore sums to zero.

Entries and postings are append-only: a mistake is corrected by a new, reversing entry. On
PostgreSQL triggers refuse UPDATE/DELETE on both tables, and a deferred constraint trigger refuses
to commit an entry whose postings do not balance (see migration 0002).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.ids import PrefixedIdField


class SystemAccount:
    """Codes of the system accounts, which stand for the world outside the wallets."""

    GATEWAY_CLEARING = "gateway_clearing"  # what card networks owe or are owed
    PLATFORM_REVENUE = "platform_revenue"  # captured payments, less refunds
    WALLET_HOLDS = "wallet_holds"  # wallet money authorized for a payment, not yet captured


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        WALLET = "wallet", "Wallet"
        SYSTEM = "system", "System"

    id = PrefixedIdField(prefix="lac")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # System accounts are named ("gateway_clearing", "platform_revenue"), one per currency; a
    # wallet account is known through its wallet and has no code.
    code = models.CharField(max_length=64, blank=True, default="")
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["code", "currency"],
                condition=Q(kind="system"),
                name="ledger_system_account_unique",
            ),
            models.CheckConstraint(
                condition=(Q(kind="system") & ~Q(code="")) | (Q(kind="wallet") & Q(code="")),
                name="ledger_account_code_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        label = self.code or self.kind
        return f"{label} {self.currency} ({self.id})"


class JournalEntry(models.Model):
    id = PrefixedIdField(prefix="jrn")
    # What kind of movement this is ("deposit", "transfer", "payment_capture", ...): free text so
    # other apps can post their own kinds without a migration here.
    kind = models.CharField(max_length=40)
    memo = models.CharField(max_length=500, blank=True, default="")
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class Posting(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    amount = models.BigIntegerField(help_text="Signed minor units, added to the account's balance.")
    currency = models.CharField(max_length=3)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="ledger_posting_non_zero")]

    def __str__(self) -> str:
        return f"{self.amount:+d} {self.currency} on {self.account_id}"
