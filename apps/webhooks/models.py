from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.ids import PrefixedIdField


class WebhookEvent(models.Model):
    """One event a provider told us about, stored once per (provider, provider event id).

    Stored as soon as its signature checks out (the provider is answered then); a worker applies it
    to its payment afterwards, retrying with backoff until it is `processed` (applied), `ignored`
    (nothing to do: a type we don't act on, news the payment already shows, an older event than
    the last one applied) or `dead` (retries exhausted, or the provider contradicts the books: a
    DeadLetter says why, and a replay gives it a fresh set of attempts).
    """

    class Provider(models.TextChoices):
        STRIPE = "stripe", "Stripe"
        AUTHORIZE_NET = "authorize_net", "Authorize.Net"

    class Status(models.TextChoices):
        RECEIVED = "received", "Received (waiting for a worker)"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed (a retry is scheduled)"
        DEAD = "dead", "Dead (replay it)"

    id = PrefixedIdField(prefix="whe")
    provider = models.CharField(max_length=20, choices=Provider.choices)
    provider_event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(
        default=0, help_text="Processing attempts since it was stored or replayed."
    )
    last_error = models.TextField(blank=True, default="")
    outcome = models.CharField(
        max_length=500, blank=True, default="", help_text="What processing did, or why not."
    )
    payment = models.ForeignKey(
        "payments.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="webhook_events",
        db_index=False,
    )
    # When the provider says the event happened (Stripe `created`, Authorize.Net `eventDate`).
    provider_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        permissions = [("replay_webhookevent", "Can replay webhook events")]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_event_id"], name="webhook_event_once_per_provider"
            )
        ]
        indexes = [
            models.Index(fields=["-received_at"], name="webhook_event_newest_idx"),
            models.Index(fields=["status", "received_at"], name="webhook_event_status_idx"),
            # The last status change applied to a payment: what an older event is compared with.
            models.Index(
                fields=["payment", "provider_created_at"],
                condition=Q(status="processed"),
                name="webhook_event_applied_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.provider_event_id} ({self.status})"
