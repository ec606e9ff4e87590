from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.ids import PrefixedIdField


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change it announces (transactional outbox).

    `published_at` is when it was last handed to the broker; `delivered_at` is when every consumer
    has run. The sweep re-publishes what is still undelivered, so a broker outage loses nothing.
    """

    id = PrefixedIdField(prefix="evt")
    event_type = models.CharField(max_length=64)
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    publish_attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["aggregate_type", "aggregate_id"], name="outbox_aggregate_idx"),
            models.Index(
                fields=["created_at"], condition=Q(delivered_at__isnull=True), name="outbox_pending_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.id}"


class ConsumedEvent(models.Model):
    """One row per (event, consumer) that has run: what makes consumers idempotent by event id."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.PROTECT, related_name="consumptions")
    consumer = models.CharField(max_length=100)
    consumed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "consumer"], name="consumed_event_once")]

    def __str__(self) -> str:
        return f"{self.consumer} consumed {self.event_id}"


class IdempotencyRecord(models.Model):
    """One Idempotency-Key of one principal on one endpoint, and the response it produced.

    For a request that calls a gateway the row is inserted `started` and committed before the view
    runs; for a pure-database one (a transfer, a batch: `@idempotent(atomic=True)`) it is inserted,
    the work done and the response stored in one transaction, a racer waiting on the unique index.
    Either way its unique (scope, key) is what lets a request execute once, whatever Redis knows.
    `completed` rows hold the response to replay. See `apps.core.idempotency`.
    """

    class State(models.TextChoices):
        STARTED = "started"
        COMPLETED = "completed"

    scope = models.CharField(max_length=255, help_text="Principal, method and path the key belongs to.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the request body's canonical JSON.")
    # The request's correlation id: what ties the events a request caused to its key (the events
    # API's `request.idempotency_key`, apps.events).
    correlation_id = models.CharField(max_length=128, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.STARTED)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique"),
            models.CheckConstraint(
                condition=Q(state="started", response_status__isnull=True, completed_at__isnull=True)
                | Q(state="completed", response_status__isnull=False, completed_at__isnull=False),
                name="idempotency_completed_has_response",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="idempotency_created_idx"),
            models.Index(
                fields=["correlation_id"], condition=~Q(correlation_id=""), name="idempotency_correlation_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} ({self.state})"


class DeadLetter(models.Model):
    """Work that failed after its last retry: what it was, why, and how often it was tried."""

    kind = models.CharField(max_length=40)  # "payment_operation", "refund", "webhook_event", ...
    reference = models.CharField(max_length=64)  # the id of what the work was about
    reason = models.CharField(max_length=500)
    payload = models.JSONField(default=dict)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replay_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["kind", "reference"], name="dead_letter_ref_idx"),
            models.Index(
                fields=["created_at"], condition=Q(replayed_at__isnull=True), name="dead_letter_open_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.reference}: {self.reason}"
