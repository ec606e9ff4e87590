"""Emails Paydesk sends, one row per (event, recipient, template): what, to whom, and how it went."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.crypto import EncryptedTextField
from apps.core.ids import PrefixedIdField


class Notification(models.Model):
    """One email to one user about one event.

    The unique (event, user, template) is what makes an email exist once however often its event
    is delivered. `status` only moves forward: pending → sending → sent, or back to pending for a
    retry, or failed after the last attempt (a replay of its dead letter makes it pending again).
    `sending` is the claim a worker takes before talking to the mail server, so a second worker
    never sends the same row.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    class Template(models.TextChoices):
        WELCOME = "welcome"
        DEPOSIT_COMPLETED = "deposit_completed"
        DEPOSIT_FAILED = "deposit_failed"
        TRANSFER_SENT = "transfer_sent"
        TRANSFER_RECEIVED = "transfer_received"
        TRANSFER_BATCH_SENT = "transfer_batch_sent"
        TRANSFER_BATCH_RECEIVED = "transfer_batch_received"
        PAYMENT_SUCCEEDED = "payment_succeeded"
        PAYMENT_FAILED = "payment_failed"
        PAYMENT_REFUNDED = "payment_refunded"
        REVIEW_DECIDED = "review_decided"
        SUBSCRIPTION_RENEWED = "subscription_renewed"
        SUBSCRIPTION_PAYMENT_FAILED = "subscription_payment_failed"
        SUBSCRIPTION_CANCELED = "subscription_canceled"
        WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint_disabled"
        PAYOUT_PAID = "payout_paid"
        PAYOUT_FAILED = "payout_failed"

    id = PrefixedIdField(prefix="ntf")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notifications")
    event = models.ForeignKey("core.OutboxEvent", on_delete=models.PROTECT, related_name="+")
    template = models.CharField(max_length=40, choices=Template.choices)
    # The address as it was when the event happened; encrypted at rest like every customer email.
    to = EncryptedTextField()
    subject = models.CharField(max_length=255)
    context = models.JSONField(default=dict, help_text="What the templates are rendered with (no secrets).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event", "user", "template"], name="notification_once_per_event_recipient"
            ),
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False)
                | (~Q(status="sent") & Q(sent_at__isnull=True)),
                name="notification_sent_has_sent_at",
            ),
        ]
        indexes = [
            # GET /notifications: the user's rows newest first (cursor pagination).
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_created_idx"),
            # The sweep: pending rows whose send is overdue, and rows stuck mid-send.
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="notification_pending_idx"
            ),
            models.Index(
                fields=["updated_at"], condition=Q(status="sending"), name="notification_sending_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} to {self.user_id} ({self.status})"
