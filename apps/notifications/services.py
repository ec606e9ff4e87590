"""Every write to notifications: creating them from events, sending each once, retrying, giving up.

    event (outbox) ─► consumer ─► notifications_create: one row per (event, recipient, template),
                                  a send task queued after commit
    send task ─► notification_send: claim (pending → sending, under the row lock, committed)
                                    ─► SMTP (no transaction open) ─► sent | pending + retry | failed

The claim is what makes a send happen once: only the worker that moved the row from `pending` to
`sending` talks to the mail server; any other task for the row (a redelivered message, the sweep,
a duplicate) finds it `sending` or `sent` and does nothing. A worker that dies after claiming
leaves the row `sending`: it may or may not have sent, so it is never resent on its own — the sweep
fails it after NOTIFICATION_SENDING_TIMEOUT_SECONDS with a dead letter an operator can replay.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from apps.accounts.models import User
from apps.core.dead_letters import dead_letter_record, replayer
from apps.core.deferred import backoff_delay, enqueue
from apps.core.models import DeadLetter, OutboxEvent
from apps.core.outbox import emit_event
from apps.notifications.models import Notification

logger = logging.getLogger(__name__)

DEAD_LETTER_KIND = "notification"
SITE_NAME = "Paydesk"
S = Notification.Status


@dataclass(frozen=True)
class Message:
    """One email to write for an event: who, which template, and what it says."""

    user: User
    template: str
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """What a send did: the row as it is now, and when to try again (None: nothing left to do)."""

    notification: Notification | None
    retry_in: float | None = None


# --- creating -----------------------------------------------------------------------------------


def notifications_create(*, event: OutboxEvent, messages: Iterable[Message]) -> list[str]:
    """Writes the event's emails and queues their sends after commit; returns the ids queued.

    Runs inside the outbox consumer's transaction (its ConsumedEvent row commits with these), so
    it owns no transaction of its own. An event delivered again finds its rows through the unique
    (event, user, template) and adds none; rows still pending are queued again, which is harmless.
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
            subject=_render_subject(message.template, _template_context(message.user, message.context)),
            context=message.context,
            correlation_id=event.correlation_id,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for message in messages
    ]
    if not rows:
        return []
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    pending = list(Notification.objects.filter(event=event, status=S.PENDING).values_list("pk", flat=True))
    transaction.on_commit(lambda: _enqueue(pending))
    return pending


def _enqueue(notification_ids: Iterable[str]) -> None:
    from apps.notifications.tasks import send_notification

    for notification_id in notification_ids:
        # the broker is down: the row is pending, the sweep queues it again
        enqueue(send_notification, notification_id, fallback="the sweep")


# --- sending ------------------------------------------------------------------------------------


def notification_send(*, notification_id: str) -> Delivery:
    """Sends the notification if it is pending, at most once; see the module docstring."""
    claimed = _claim(notification_id)
    if claimed is None:
        return Delivery(Notification.objects.filter(pk=notification_id).first())
    try:
        _deliver(claimed)
    except Exception as exc:  # any failure is recorded on the row: retried, or failed for good
        logger.warning(
            "notification %s: send attempt %d failed: %s",
            claimed.pk,
            claimed.attempts,
            _describe(exc, claimed),
        )
        return _record_failure(notification_id=claimed.pk, error=exc)
    return Delivery(_mark_sent(notification=claimed))


@transaction.atomic(durable=True)
def _claim(notification_id: str) -> Notification | None:
    notification = (
        Notification.objects.select_for_update().select_related("user").filter(pk=notification_id).first()
    )
    if notification is None or notification.status != S.PENDING:
        return None
    notification.status = S.SENDING
    notification.attempts += 1
    notification.updated_at = timezone.now()
    notification.save(update_fields=["status", "attempts", "updated_at"])
    return notification


def _deliver(notification: Notification) -> None:
    context = {**_template_context(notification.user, notification.context), "notification": notification.pk}
    email = EmailMultiAlternatives(
        subject=notification.subject,
        body=render_to_string(f"emails/{notification.template}/body.txt", context),
        to=[notification.to],
        # A stable Message-ID: the one email of this row, recognisable downstream (and by tests).
        headers={"Message-ID": message_id(notification.pk)},
    )
    email.attach_alternative(
        render_to_string(f"emails/{notification.template}/body.html", context), "text/html"
    )
    email.send(fail_silently=False)


def message_id(notification_id: str) -> str:
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "paydesk.local"
    return f"<{notification_id}@{domain}>"


@transaction.atomic(durable=True)
def _mark_sent(*, notification: Notification) -> Notification:
    """The email is out: recorded as sent whatever happened to the row meanwhile (the truth wins
    even over the sweep having given up on it), so no lock and no re-read are needed."""
    now = timezone.now()
    notification.status = S.SENT
    notification.sent_at = now
    notification.next_attempt_at = None
    notification.updated_at = now
    notification.save(update_fields=["status", "sent_at", "next_attempt_at", "updated_at"])
    emit_event(
        event_type="notification.sent", aggregate=notification, payload=notification_payload(notification)
    )
    return notification


@transaction.atomic(durable=True)
def _record_failure(*, notification_id: str, error: Exception) -> Delivery:
    notification = Notification.objects.select_for_update().get(pk=notification_id)
    if notification.status != S.SENDING:  # the sweep gave up on this send meanwhile
        return Delivery(notification)
    notification.last_error = _describe(error, notification)[:500]
    notification.updated_at = timezone.now()
    if _is_permanent(error) or notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        _fail(
            notification,
            reason=f"gave up after {notification.attempts} attempt(s): {notification.last_error}",
        )
        return Delivery(notification)
    delay = backoff_delay(
        attempt=notification.attempts,
        base=settings.NOTIFICATION_RETRY_BASE_SECONDS,
        maximum=settings.NOTIFICATION_RETRY_MAX_SECONDS,
    )
    notification.status = S.PENDING
    notification.next_attempt_at = notification.updated_at + timedelta(seconds=delay)
    notification.save(update_fields=["status", "last_error", "next_attempt_at", "updated_at"])
    return Delivery(notification, retry_in=delay)


def _fail(notification: Notification, *, reason: str) -> None:
    """Inside the caller's transaction: failed for good, with a dead letter and its event."""
    notification.status = S.FAILED
    notification.next_attempt_at = None
    notification.save(update_fields=["status", "last_error", "next_attempt_at", "updated_at"])
    dead_letter_record(
        kind=DEAD_LETTER_KIND,
        reference=notification.pk,
        reason=f"{notification.template} email: {reason}",
        payload={
            "notification": notification.pk,
            "template": notification.template,
            "event": notification.event_id,
        },
        attempts=notification.attempts,
    )
    emit_event(
        event_type="notification.failed", aggregate=notification, payload=notification_payload(notification)
    )


def _is_permanent(error: Exception) -> bool:
    """A mail server that refuses the recipient or the message (5xx) will refuse it again."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return True
    code = getattr(error, "smtp_code", None)
    return isinstance(code, int) and code >= 500


def _describe(error: Exception, notification: Notification) -> str:
    # SMTP errors quote the recipient; what is recorded and logged never holds the address.
    return f"{type(error).__name__}: {error}".replace(notification.to, "<recipient>")


def notification_payload(notification: Notification) -> dict[str, Any]:
    """What notification events say: ids and outcome, never the address."""
    return {
        "notification": notification.pk,
        "user": notification.user_id,
        "template": notification.template,
        "status": notification.status,
        "attempts": notification.attempts,
        "last_error": notification.last_error,
        "source_event": notification.event_id,
        "payment": notification.context.get("payment"),
        "correlation_id": notification.correlation_id,
        "sent_at": notification.sent_at.isoformat() if notification.sent_at else None,
    }


# --- rendering ----------------------------------------------------------------------------------


def _template_context(user: User, context: dict[str, Any]) -> dict[str, Any]:
    return {"site_name": SITE_NAME, "name": user.full_name or user.email, **context}


def _render_subject(template: str, context: dict[str, Any]) -> str:
    # One line, whatever the template's whitespace: a newline in a subject is a header injection.
    subject = " ".join(render_to_string(f"emails/{template}/subject.txt", context).split())
    return subject[: Notification._meta.get_field("subject").max_length]


# --- sweeping and replay ------------------------------------------------------------------------


def notifications_sweep() -> tuple[int, int]:
    """Queues again the pending sends whose task was lost; fails the ones stuck mid-send.

    Returns (queued, failed). Pending rows are only re-queued (the claim makes an extra task
    harmless); a row stuck `sending` is failed, never resent, because it may have gone out.
    """
    now = timezone.now()
    overdue = list(
        Notification.objects.filter(
            status=S.PENDING,
            next_attempt_at__lte=now - timedelta(seconds=settings.NOTIFICATION_SWEEP_AFTER_SECONDS),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
    _enqueue(overdue)
    stuck = Notification.objects.filter(
        status=S.SENDING,
        updated_at__lte=now - timedelta(seconds=settings.NOTIFICATION_SENDING_TIMEOUT_SECONDS),
    ).values_list("pk", flat=True)[:500]
    failed = sum(_fail_stuck(notification_id=notification_id) for notification_id in list(stuck))
    return len(overdue), failed


@transaction.atomic(durable=True)
def _fail_stuck(*, notification_id: str) -> bool:
    notification = (
        Notification.objects.select_for_update().filter(pk=notification_id, status=S.SENDING).first()
    )
    if notification is None:
        return False
    notification.last_error = "the worker stopped while sending: it may have been sent; replay to send again"
    notification.updated_at = timezone.now()
    _fail(notification, reason=notification.last_error)
    return True


@transaction.atomic(durable=True)
def notification_requeue(*, notification_id: str) -> Notification | None:
    """A failed notification gets a fresh set of attempts (an operator's replay of its dead letter)."""
    notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
    if notification is None or notification.status != S.FAILED:
        return notification
    notification.status = S.PENDING
    notification.attempts = 0
    notification.next_attempt_at = notification.updated_at = timezone.now()
    notification.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
    transaction.on_commit(lambda: _enqueue([notification_id]))
    return notification


@replayer(DEAD_LETTER_KIND)
def _replay(letter: DeadLetter) -> None:
    notification_requeue(notification_id=letter.reference)
