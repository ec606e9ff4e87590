"""Events are kept EVENTS_RETENTION_DAYS (at least 30), then purged with their deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.events.models import DeliveryAttempt, Event, WebhookDelivery

PURGE_BATCH = 5_000


def retention_cutoff(*, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=max(int(settings.EVENTS_RETENTION_DAYS), 30))


def events_purge(*, now: datetime | None = None, dry_run: bool = False) -> int:
    """Deletes events older than the retention (their deliveries and attempts first), in batches of
    PURGE_BATCH, each its own transaction; returns how many events went (or would go)."""
    cutoff = retention_cutoff(now=now)
    if dry_run:
        return Event.objects.filter(created_at__lt=cutoff).count()
    events, deliveries, attempts = (
        Event._meta.db_table,
        WebhookDelivery._meta.db_table,
        DeliveryAttempt._meta.db_table,
    )
    purged = 0
    while True:
        with transaction.atomic(durable=True), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {events} WHERE created_at < %s LIMIT %s",  # noqa: S608  # nosec B608: table and column names of our models, values as parameters
                [cutoff, PURGE_BATCH],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return purged
            cursor.execute(
                f"DELETE FROM {attempts} WHERE delivery_id IN "  # noqa: S608  # nosec B608: table and column names of our models, values as parameters
                f"(SELECT id FROM {deliveries} WHERE event_id = ANY(%s))",
                [ids],
            )
            cursor.execute(f"DELETE FROM {deliveries} WHERE event_id = ANY(%s)", [ids])  # noqa: S608  # nosec B608: table and column names of our models, values as parameters
            cursor.execute(f"DELETE FROM {events} WHERE id = ANY(%s)", [ids])  # noqa: S608  # nosec B608: table and column names of our models, values as parameters
        purged += len(ids)
