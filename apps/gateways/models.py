"""What gateways keep: every call Paydesk made to one (`GatewayAttempt`), and the simulated gateway's state.

The app sits below payments and wallets and imports neither: an attempt names what it was made for
by `subject_id`, the prefixed id of its subject (`pay_…` for a payment step or refund, the deposit
transaction's `txn_…` for a deposit). The tables were created by the payments app and keep its names.
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from apps.core.ids import PrefixedIdField


class GatewayAttempt(models.Model):
    """Every call Paydesk made to a gateway: for what (`subject_id`), with which key, what came back."""

    subject_id = models.CharField(max_length=40, help_text="The payment's or deposit transaction's id.")
    operation = models.CharField(max_length=16)
    idempotency_key = models.CharField(max_length=80)
    outcome = models.CharField(max_length=20)  # the result status, or retryable_error / error / lost
    error_code = models.CharField(max_length=64, blank=True, default="")
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "payments_gatewayattempt"  # created by the payments app, before gateways was one
        indexes = [models.Index(fields=["subject_id", "created_at"], name="gateway_attempt_subject_idx")]

    def __str__(self) -> str:
        return f"{self.operation} {self.subject_id}: {self.outcome}"


# --- the simulated gateway's own state ----------------------------------------------------------
# It stands for an external system: only apps.gateways.simulated reads or writes these
# tables, always in its own transactions, so web processes and workers see one gateway.


class SimulatedCharge(models.Model):
    """A charge at the simulated gateway, one per authorize idempotency key."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (not charged: transient errors so far)"
        AUTHORIZED = "authorized"
        CAPTURED = "captured"
        FAILED = "failed"
        VOIDED = "voided"
        REFUNDED = "refunded"

    reference = PrefixedIdField(prefix="sim_ch")
    idempotency_key = models.CharField(max_length=255, unique=True)
    token = models.CharField(max_length=255)
    amount = models.BigIntegerField()
    amount_captured = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    capture_requested = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Authorize calls made with this key.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "payments_simulatedcharge"  # created by the payments app, before gateways was one
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="sim_charge_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_captured__gte=0, amount_captured__lte=F("amount")),
                name="sim_charge_captured_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0, amount_refunded__lte=F("amount_captured")),
                name="sim_charge_refunded_within_captured",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.status}"


class SimulatedChargeOperation(models.Model):
    """A capture, void or refund at the simulated gateway, one per idempotency key."""

    class Kind(models.TextChoices):
        CAPTURE = "capture"
        VOID = "void"
        REFUND = "refund"

    idempotency_key = models.CharField(max_length=255, unique=True)
    charge = models.ForeignKey(SimulatedCharge, on_delete=models.PROTECT, related_name="operations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "payments_simulatedchargeoperation"

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on {self.charge_id}"


class SimulatedPayout(models.Model):
    """A payout at the simulated gateway, one per idempotency key; settled the moment it is made."""

    class Status(models.TextChoices):
        PAID = "paid"
        FAILED = "failed"

    reference = PrefixedIdField(prefix="sim_po")
    idempotency_key = models.CharField(max_length=255, unique=True)
    destination = models.CharField(max_length=255)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=Status.choices)
    failure_code = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="sim_payout_amount_positive")]

    def __str__(self) -> str:
        return f"{self.reference} {self.status}"


# --- Authorize.Net: what Paydesk sent -------------------------------------------------------------


class AuthorizeNetSubmission(models.Model):
    """A charge or refund Paydesk sends to Authorize.Net, recorded (and committed) before it goes out.

    Authorize.Net takes no idempotency key. Each call that creates a transaction carries instead a
    reference derived from our key, as its `invoiceNumber` and `refId` (20 characters at most). This
    row says the call may have reached Authorize.Net: a repeat of the key looks for the first
    transaction (by its id once known, else by the reference) before sending anything again, and a
    key with no row was never sent. Only apps.gateways.authorizenet writes it, in its own transactions.
    """

    class Operation(models.TextChoices):
        AUTHORIZE = "authorize"
        REFUND = "refund"

    key = models.CharField(max_length=255, unique=True, help_text="Paydesk's idempotency key of the call.")
    reference = models.CharField(max_length=20, unique=True, help_text="invoiceNumber and refId sent.")
    operation = models.CharField(max_length=16, choices=Operation.choices)
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    ref_trans_id = models.CharField(max_length=32, blank=True, default="", help_text="What a refund is for.")
    trans_id = models.CharField(
        max_length=32, blank=True, default="", help_text="Authorize.Net's id, once known."
    )
    sends = models.PositiveIntegerField(default=0, help_text="Requests sent with this key.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="anet_submission_amount_positive")
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.key} ({self.reference}): {self.trans_id or 'no transId yet'}"
