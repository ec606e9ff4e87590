from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from apps.core.crypto import EncryptedTextField
from apps.core.ids import PrefixedIdField
from apps.core.money import Money

# --- payments ------------------------------------------------------------------------------------

# The outbox event, written with a `Prefer: respond-async` card payment, that has a worker run its
# gateway step (apps.payments.consumers); reconciliation leaves alone a payment whose event waits.
PROCESSING_REQUESTED = "payment.processing_requested"


class Payment(models.Model):
    """A charge on a card token or a debit of the payer's own wallet.

    The lifecycle is owned by `apps.payments.states` (one transition function); money fields are
    only ever changed by services, each transition in one transaction with its ledger entry,
    audit row and outbox event. While a gateway call is under way or waiting for a retry the
    payment is `processing` and `pending_operation` says what is being done (authorize, capture,
    void), so a retry, a reconciliation or a crashed request can always finish the same step.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        IN_REVIEW = "in_review", "In review"
        REQUIRES_CAPTURE = "requires_capture", "Requires capture"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"
        REFUNDED = "refunded", "Refunded"
        RECONCILE = "reconcile", "Reconcile"

    class CaptureMethod(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic"
        MANUAL = "manual", "Manual"

    class MethodType(models.TextChoices):
        CARD = "card", "Card"
        WALLET = "wallet", "Wallet"

    class Operation(models.TextChoices):
        NONE = "", "None"
        AUTHORIZE = "authorize", "Authorize"
        CAPTURE = "capture", "Capture"
        VOID = "void", "Void"

    id = PrefixedIdField(prefix="pay")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments", db_index=False
    )
    amount = models.BigIntegerField()
    amount_captured = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    capture_method = models.CharField(max_length=10, choices=CaptureMethod.choices)
    method_type = models.CharField(max_length=10, choices=MethodType.choices)
    # The gateway token (tok_…/pm_…), encrypted at rest; never a card number (refused at the API).
    payment_method_token = EncryptedTextField(blank=True, default="")
    wallet = models.ForeignKey(
        "wallets.Wallet", on_delete=models.PROTECT, null=True, blank=True, related_name="payments"
    )
    card_brand = models.CharField(max_length=20, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    gateway = models.CharField(max_length=20, blank=True, default="")
    gateway_reference = models.CharField(max_length=255, blank=True, default="")
    description = models.CharField(max_length=500, blank=True, default="")
    customer_id = models.CharField(max_length=100, blank=True, default="")
    receipt_email = EncryptedTextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    pending_operation = models.CharField(max_length=10, choices=Operation.choices, blank=True, default="")
    operation_amount = models.BigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0, help_text="Gateway attempts of the pending operation.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Why risk rules held it (also kept on its Review): set before the gateway when judged up front.
    risk_reasons = models.JSONField(default=list, blank=True)
    subscription_id = models.CharField(max_length=40, blank=True, default="", db_index=True)
    # The billing period a subscription payment pays for (e.g. its start, ISO 8601): at most one
    # payment per (subscription, period), enforced by the database whatever runs twice.
    billing_period = models.CharField(max_length=40, blank=True, default="")
    # A chargeback the provider told us about (webhooks): flagged, no money moves until it's decided.
    dispute_reference = models.CharField(max_length=255, blank=True, default="")
    dispute_reason = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("review_payment", "Can approve or deny payments held for review")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.UniqueConstraint(
                fields=["subscription_id", "billing_period"],
                condition=~Q(subscription_id=""),
                name="payment_one_per_billing_period",
            ),
            models.CheckConstraint(
                condition=Q(amount_captured__gte=0) & Q(amount_captured__lte=F("amount")),
                name="payment_captured_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount_captured")),
                name="payment_refunded_within_captured",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="payment_owner_newest_idx"),
            models.Index(fields=["-created_at", "-id"], name="payment_newest_idx"),
            models.Index(fields=["customer_id", "created_at"], name="payment_customer_idx"),
            # Provider webhooks find payments by the gateway's id for them.
            models.Index(
                fields=["gateway_reference"],
                condition=~Q(gateway_reference=""),
                name="payment_gateway_ref_idx",
            ),
            models.Index(
                fields=["status", "updated_at"],
                condition=Q(status__in=["pending", "processing", "reconcile", "in_review"]),
                name="payment_open_status_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {Money(self.amount, self.currency)} {self.status}"

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


class Review(models.Model):
    """A payment or a deposit held by risk rules: authorized, not captured, until a reviewer decides.

    One queue for both: exactly one of `payment` and `deposit` is set.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"

    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, related_name="review", null=True, blank=True
    )
    deposit = models.OneToOneField(
        "wallets.Transaction", on_delete=models.PROTECT, related_name="review", null=True, blank=True
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    reasons = models.JSONField(default=list)
    opened_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["status", "opened_at"], name="review_queue_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(payment__isnull=False, deposit__isnull=True)
                | Q(payment__isnull=True, deposit__isnull=False),
                name="review_of_payment_or_deposit",
            )
        ]

    def __str__(self) -> str:
        return f"review of {self.subject_id}: {self.status}"

    @property
    def subject_id(self) -> str:
        """The id of what is held: the payment's, or the deposit's."""
        return str(self.payment_id or self.deposit_id)


class Refund(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = PrefixedIdField(prefix="re")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=500, blank=True, default="")
    gateway_reference = models.CharField(max_length=255, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]

    def __str__(self) -> str:
        return f"{self.id} ({self.amount} minor units, {self.status})"
