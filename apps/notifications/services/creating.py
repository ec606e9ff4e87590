"""Writing a batch of events' emails, and sending them as soon as the batch commits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.core.models import OutboxEvent
from apps.notifications.models import Notification
from apps.notifications.services.rendering import render_subject, template_context
from apps.notifications.services.sending import S, notifications_send


@dataclass(frozen=True)
class Message:
    """One email to write for an event: who, which template, and what it says."""

    user: User
    template: str
    context: dict[str, Any] = field(default_factory=dict)


def notifications_create(*, event: OutboxEvent, messages: Iterable[Message]) -> list[str]:
    """Writes the event's emails and sends them after commit; returns the ids to send."""
    return notifications_create_many(batch=[(event, list(messages))])


def notifications_create_many(*, batch: Iterable[tuple[OutboxEvent, list[Message]]]) -> list[str]:
    """Writes the emails of a batch of events with one INSERT and sends them right after commit,
    in this task, over one SMTP connection (`notifications_send`); returns the ids to send.

    Runs inside the outbox consumer's transaction (its ConsumedEvent rows commit with these), so
    it owns no transaction of its own. Each row is due for the sweep only
    NOTIFICATION_SWEEP_AFTER_SECONDS from now: its send here is the first attempt, and the sweep
    is there for the case that it never ran. An event delivered again finds its rows through the
    unique (event, user, template) and adds none; rows still pending are sent again, which the
    claim makes harmless.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("notifications_create runs inside the outbox consumer's transaction")
    now = timezone.now()
    rows = [
        Notification(
            user=message.user,
            event=event,
            template=message.template,
            to=message.user.email,
            subject=render_subject(
                message.template,
                template_context(message.user.full_name or message.user.email, message.context),
            ),
            # The greeting's name goes with the row, so the send reads no user; never the address
            # (kept encrypted in `to`), which stands in for a missing name when the email is written.
            context={**message.context, "name": message.user.full_name},
            correlation_id=event.correlation_id,
            next_attempt_at=now + timedelta(seconds=settings.NOTIFICATION_SWEEP_AFTER_SECONDS),
            created_at=now,
            updated_at=now,
        )
        for event, messages in batch
        for message in messages
    ]
    if not rows:
        return []
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    pending = list(
        Notification.objects.filter(event__in={row.event_id for row in rows}, status=S.PENDING)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    )
    # robust: a failure to send is the rows' to retry (they stay pending for the sweep); it must
    # not fail the delivery that committed them.
    transaction.on_commit(lambda: send_in_batches(pending), robust=True)
    return pending


def send_in_batches(notification_ids: list[str]) -> None:
    """Sends the emails NOTIFICATION_SEND_BATCH at a time (each batch over one connection)."""
    size = settings.NOTIFICATION_SEND_BATCH
    for start in range(0, len(notification_ids), size):
        notifications_send(notification_ids=notification_ids[start : start + size])
