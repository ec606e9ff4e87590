"""Merchant-facing events and the webhooks that push them (API.md "Outbound webhooks and events").

    outbox event ─► Event (one per principal who can see it: `evt_…`, the resource rendered)
                      └► WebhookDelivery (one per enabled endpoint subscribed to its type)
                            └► DeliveryAttempt (one per POST: status code, latency, error)

`Event` is what `GET /events` reads: never updated, purged after EVENTS_RETENTION_DAYS (≥ 30).
A delivery's schedule lives in its row (`next_attempt_at`), never in the broker; `lease_expires_at`
is the claim a worker holds while it sends (see apps.events.delivery).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.crypto import EncryptedTextField
from apps.core.ids import PrefixedIdField


class Event(models.Model):
    """One public event as one principal sees it: a transfer is one event for the sender and
    another (its own id) for the receiver, as Stripe gives each account its own."""

    id = PrefixedIdField(prefix="evt")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=64)
    # The outbox event it was made from (not a foreign key: the two are kept for different times).
    source_event_id = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now, help_text="When the change happened.")
    data = models.JSONField(default=dict, help_text='{"object": the resource as the API returns it}')
    request_correlation_id = models.CharField(max_length=128, blank=True, default="")
    request_idempotency_key = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_event_id", "user"], name="event_once_per_principal")
        ]
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="event_user_created_idx"),
            # The retention purge: by time, on a table that only grows at its end.
            BrinIndex(fields=["created_at"], name="event_created_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class WebhookEndpoint(models.Model):
    """A merchant's URL that receives the events it subscribed to, signed with its secret."""

    class Status(models.TextChoices):
        ENABLED = "enabled"
        DISABLED = "disabled"

    id = PrefixedIdField(prefix="we")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    url = models.CharField(max_length=2048)
    description = models.CharField(max_length=500, blank=True, default="")
    enabled_events = models.JSONField(default=list, help_text='Event types, or ["*"] for all of them.')
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ENABLED)
    # `whsec_…`, encrypted at rest; the previous one signs too until `previous_secret_expires_at`.
    secret = EncryptedTextField()
    previous_secret = EncryptedTextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # Since when every attempt has failed (null after a success): 3 days of it disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created_at", "-id"], name="webhook_endpoint_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class WebhookDelivery(models.Model):
    """One event to one endpoint: created pending, tried until a 2xx (succeeded) or until its
    retry window closes (failed)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = PrefixedIdField(prefix="wd")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # Held by the worker sending it (committed before the POST); another worker skips it until then.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once"),
            models.CheckConstraint(
                condition=Q(status="pending", next_attempt_at__isnull=False) | ~Q(status="pending"),
                name="webhook_delivery_pending_is_scheduled",
            ),
        ]
        indexes = [
            models.Index(fields=["endpoint", "-created_at", "-id"], name="webhook_delivery_endpoint_idx"),
            # The sweep: pending deliveries by when they are due.
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="webhook_delivery_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One POST of a delivery and how it went."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    succeeded = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_number_once")
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}"
