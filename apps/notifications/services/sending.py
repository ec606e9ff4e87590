"""Sending emails each at most once: the claim, one SMTP connection, recording the outcomes."""

from __future__ import annotations

import contextlib
import logging
import smtplib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.core.dead_letters import dead_letter_record
from apps.core.deferred import backoff_delay
from apps.core.outbox import emit_event, emit_events
from apps.notifications.models import Notification
from apps.notifications.services.rendering import compose

logger = logging.getLogger(__name__)

DEAD_LETTER_KIND = "notification"
S = Notification.Status


@dataclass(frozen=True)
class Delivery:
    """What a send did: the row as it is now, and when it is due again (None: nothing left to do)."""

    notification: Notification | None
    retry_in: float | None = None


@dataclass(frozen=True)
class Sending:
    """What a send of a batch did: the rows as they are now, and the ids due again after
    `retry_in` seconds (none: nothing left to do)."""

    notifications: list[Notification]
    retry_ids: list[str] = field(default_factory=list)
    retry_in: float | None = None


def notification_send(*, notification_id: str) -> Delivery:
    """Sends the notification if it is pending, at most once; see the package docstring."""
    sending = notifications_send(notification_ids=[notification_id])
    if not sending.notifications:
        return Delivery(Notification.objects.filter(pk=notification_id).first())
    return Delivery(sending.notifications[0], retry_in=sending.retry_in)


def notifications_send(*, notification_ids: list[str]) -> Sending:
    """Sends those of the notifications that are pending, each at most once, over one SMTP
    connection; see the package docstring.

    Claimed together (one statement), sent one message at a time on the one connection (so each
    email's outcome is its own), recorded together: the sent ones in one UPDATE with their
    `notification.sent` events in one INSERT; the failed ones put back as pending, due again after
    one backoff for the batch (the sweep sends them then), or failed for good. A connection that
    breaks is opened again for the next email; one that cannot be opened fails the rest of the
    batch with that error (they are retried).
    """
    claimed = _claim(notification_ids)
    if not claimed:
        return Sending([])
    names = _names(claimed)
    sent: list[Notification] = []
    errors: dict[str, Exception] = {}
    smtp = None
    try:
        for position, notification in enumerate(claimed):
            if smtp is None:
                try:
                    smtp = get_connection(fail_silently=False)
                    smtp.open()
                except Exception as exc:  # the relay is unreachable: the rest of the batch waits
                    smtp = None
                    for unsent in claimed[position:]:
                        errors[unsent.pk] = exc
                    _log_failure(claimed[position], exc, batch=len(claimed) - position)
                    break
            try:
                smtp.send_messages([compose(notification, names[notification.pk], smtp)])
            except Exception as exc:  # any failure is recorded on the row: retried, or failed for good
                errors[notification.pk] = exc
                _log_failure(notification, exc)
                if not isinstance(exc, (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused)):
                    _close(smtp)  # not an answer from the server: the connection may be gone
                    smtp = None
                continue
            sent.append(notification)
    finally:
        if smtp is not None:
            _close(smtp)
    if sent:
        _mark_sent(notifications=sent)
    if not errors:
        return Sending(sent)
    failed, retry_in = _record_failures(errors=errors)
    return Sending(
        sent + failed,
        retry_ids=[n.pk for n in failed if n.status == S.PENDING] if retry_in is not None else [],
        retry_in=retry_in,
    )


@transaction.atomic(durable=True)
def _claim(notification_ids: list[str]) -> list[Notification]:
    """pending → sending, in one statement (committed before the mail server is called), for those of the given ones
    still pending and for other pending emails already due, up to NOTIFICATION_SEND_BATCH in all.

    The rows are locked `FOR UPDATE SKIP LOCKED` and re-checked as pending under their lock, so of
    two claims of a row exactly one moves it: the other skips it, or finds it `sending`. Gathering
    the due ones is what makes a backlog of retries cheap (one connection for them); a claim with
    none of its own left gathers nothing (another claim before it is sending them).
    """
    table = connection.ops.quote_name(Notification._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH own AS (
                SELECT id FROM {table} WHERE id = ANY(%(ids)s) AND status = 'pending'
                ORDER BY id FOR UPDATE SKIP LOCKED
            ), due AS (
                SELECT id FROM {table}
                WHERE status = 'pending' AND next_attempt_at <= %(now)s AND id <> ALL(%(ids)s)
                    AND EXISTS (SELECT 1 FROM own)
                ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED
                LIMIT GREATEST(%(batch)s - (SELECT count(*) FROM own), 0)
            )
            UPDATE {table} AS n SET status = 'sending', attempts = n.attempts + 1, updated_at = %(now)s
            WHERE n.id IN (SELECT id FROM own UNION ALL SELECT id FROM due)
            RETURNING n.id
            """,  # noqa: S608  # nosec B608: the table name is the model's own, quoted; values as parameters
            {"ids": list(notification_ids), "now": timezone.now(), "batch": settings.NOTIFICATION_SEND_BATCH},
        )
        claimed = [row[0] for row in cursor.fetchall()]
    # Read through the model (the address decrypts there), in the order they were written.
    return list(Notification.objects.filter(pk__in=claimed).order_by("created_at", "pk")) if claimed else []


def _names(notifications: list[Notification]) -> dict[str, str]:
    """How each email greets its reader: the name written with the row, or its address. (Rows
    written before the name was, if any, read their user's.)"""
    older = {n.user_id for n in notifications if "name" not in n.context}
    users = {user.pk: user.full_name for user in User.objects.filter(pk__in=older)} if older else {}
    return {
        n.pk: (n.context["name"] if "name" in n.context else users.get(n.user_id, "")) or n.to
        for n in notifications
    }


def _close(smtp: BaseEmailBackend) -> None:
    # A QUIT the server does not answer well changes nothing about what was sent: never raised,
    # or the batch's outcomes would go unrecorded (its rows left `sending`).
    with contextlib.suppress(Exception):
        smtp.close()


def _log_failure(notification: Notification, error: Exception, batch: int = 1) -> None:
    logger.warning(
        "notification %s%s: send attempt %d failed: %s",
        notification.pk,
        f" and {batch - 1} more" if batch > 1 else "",
        notification.attempts,
        _describe(error, notification),
    )


@transaction.atomic(durable=True)
def _mark_sent(*, notifications: list[Notification]) -> None:
    """The emails are out: recorded as sent whatever happened to the rows meanwhile (the truth wins
    even over the sweep having given up on one), so no lock and no re-read are needed. One UPDATE,
    and their `notification.sent` events in one INSERT, each with its email's correlation id."""
    now = timezone.now()
    Notification.objects.filter(pk__in=[n.pk for n in notifications]).update(
        status=S.SENT, sent_at=now, next_attempt_at=None, updated_at=now
    )
    for notification in notifications:
        notification.status, notification.sent_at, notification.next_attempt_at = S.SENT, now, None
        notification.updated_at = now
    # Each event carries the correlation id of the change its email is about (a batch may span
    # several changes), not the sending task's.
    emit_events(
        events=[("notification.sent", n, notification_payload(n)) for n in notifications],
        correlation_ids=[n.correlation_id for n in notifications],
    )


@transaction.atomic(durable=True)
def _record_failures(*, errors: dict[str, Exception]) -> tuple[list[Notification], float | None]:
    """The failed sends, in one transaction: each put back as pending, all due again after one
    backoff (the batch's, from its highest attempt count), or failed for good (permanent refusal,
    or out of attempts). Returns the rows and the backoff (None: none is to be retried)."""
    notifications = list(Notification.objects.select_for_update().filter(pk__in=list(errors)).order_by("pk"))
    now = timezone.now()
    retried = []
    for notification in notifications:
        if notification.status != S.SENDING:  # the sweep gave up on this send meanwhile
            continue
        error = errors[notification.pk]
        notification.last_error = _describe(error, notification)[:500]
        notification.updated_at = now
        if _is_permanent(error) or notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
            fail(
                notification,
                reason=f"gave up after {notification.attempts} attempt(s): {notification.last_error}",
            )
        else:
            retried.append(notification)
    if not retried:
        return notifications, None
    delay = backoff_delay(
        attempt=max(n.attempts for n in retried),
        base=settings.NOTIFICATION_RETRY_BASE_SECONDS,
        maximum=settings.NOTIFICATION_RETRY_MAX_SECONDS,
    )
    for notification in retried:
        notification.status = S.PENDING
        notification.next_attempt_at = now + timedelta(seconds=delay)
        notification.save(update_fields=["status", "last_error", "next_attempt_at", "updated_at"])
    return notifications, delay


def fail(notification: Notification, *, reason: str) -> None:
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
