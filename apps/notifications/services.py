"""Every write to notifications: creating them from events, sending each once, retrying, giving up.

    events (outbox, a batch) ─► consumer ─► notifications_create_many: one row per (event,
                                recipient, template), ONE send task for them queued after commit
    send task ─► notifications_send: claim the batch (pending → sending, under the row locks,
                 committed) ─► ONE SMTP connection, one message at a time (no transaction open)
                 ─► sent (together) | pending + retry of only those | failed

The claim is what makes a send happen once: only the worker that moved the row from `pending` to
`sending` talks to the mail server; any other task for the row (a redelivered message, the sweep,
a duplicate) finds it `sending` or `sent` and does nothing. A worker that dies after claiming
leaves the row `sending`: it may or may not have sent, so it is never resent on its own — the sweep
fails it after NOTIFICATION_SENDING_TIMEOUT_SECONDS with a dead letter an operator can replay.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.template.loader import get_template
from django.utils import timezone

from apps.accounts.models import User
from apps.core.dead_letters import dead_letter_record, replayer
from apps.core.deferred import backoff_delay, enqueue
from apps.core.models import DeadLetter, OutboxEvent
from apps.core.outbox import emit_event, emit_events
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
    """Writes the event's emails and queues their send after commit; returns the ids queued."""
    return notifications_create_many(batch=[(event, list(messages))])


def notifications_create_many(*, batch: Iterable[tuple[OutboxEvent, list[Message]]]) -> list[str]:
    """Writes the emails of a batch of events with one INSERT and queues ONE send of them after
    commit (one task, one SMTP connection); returns the ids queued.

    Runs inside the outbox consumer's transaction (its ConsumedEvent rows commit with these), so
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
    transaction.on_commit(lambda: _enqueue(pending))
    return pending


def _enqueue(notification_ids: Iterable[str]) -> None:
    """One send task per batch of up to NOTIFICATION_SEND_BATCH emails (never one per email)."""
    from apps.notifications.tasks import send_notifications

    ids, size = list(notification_ids), settings.NOTIFICATION_SEND_BATCH
    for start in range(0, len(ids), size):
        # the broker is down: the rows are pending, the sweep queues them again
        enqueue(send_notifications, ids[start : start + size], fallback="the sweep")


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sending:
    """What a send of a batch did: the rows as they are now, and the ids to try again after
    `retry_in` seconds (none: nothing left to do)."""

    notifications: list[Notification]
    retry_ids: list[str] = field(default_factory=list)
    retry_in: float | None = None


def notification_send(*, notification_id: str) -> Delivery:
    """Sends the notification if it is pending, at most once; see the module docstring."""
    sending = notifications_send(notification_ids=[notification_id])
    if not sending.notifications:
        return Delivery(Notification.objects.filter(pk=notification_id).first())
    return Delivery(sending.notifications[0], retry_in=sending.retry_in)


def notifications_send(*, notification_ids: list[str]) -> Sending:
    """Sends those of the notifications that are pending, each at most once, over one SMTP
    connection; see the module docstring.

    Claimed together (one transaction), sent one message at a time on the one connection (so each
    email's outcome is its own), recorded together: the sent ones in one UPDATE with their
    `notification.sent` events in one INSERT; the failed ones put back for a retry with one backoff
    for the batch, or failed for good. A connection that breaks is opened again for the next email;
    one that cannot be opened fails the rest of the batch with that error (they are retried).
    """
    claimed = _claim(notification_ids)
    if not claimed:
        return Sending([])
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
                smtp.send_messages([_email(notification, smtp)])
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
def _claim(notification_ids: list[str]) -> list[Notification]:
    """pending → sending for those of the given ones still pending, under their row locks (taken
    in id order), and for other pending emails already due, up to NOTIFICATION_SEND_BATCH in all.

    Gathering the due ones is what makes a backlog cheap: the first send task of many takes the
    emails of the tasks queued behind it, over its one connection, and theirs then find nothing to
    do (a task with none of its own left gathers nothing: one before it is doing so). Those are
    taken with SKIP LOCKED (a row another worker is claiming is its to send), never before they
    are due (a retry waits out its backoff).
    """
    rows = Notification.objects.select_for_update(of=("self",)).select_related("user")
    notifications = list(rows.filter(pk__in=notification_ids, status=S.PENDING).order_by("pk"))
    room = settings.NOTIFICATION_SEND_BATCH - len(notifications)
    if notifications and room > 0:  # (none of its own left: a task before it gathered them)
        notifications += list(
            rows.select_for_update(of=("self",), skip_locked=True)
            .filter(status=S.PENDING, next_attempt_at__lte=timezone.now())
            .exclude(pk__in=[n.pk for n in notifications])
            .order_by("next_attempt_at")[:room]
        )
    if not notifications:
        return []
    now = timezone.now()
    Notification.objects.filter(pk__in=[n.pk for n in notifications]).update(
        status=S.SENDING, attempts=F("attempts") + 1, updated_at=now
    )
    for notification in notifications:
        notification.status, notification.attempts, notification.updated_at = (
            S.SENDING,
            notification.attempts + 1,
            now,
        )
    return notifications


def _email(notification: Notification, smtp: BaseEmailBackend) -> EmailMultiAlternatives:
    context = {**_template_context(notification.user, notification.context), "notification": notification.pk}
    email = EmailMultiAlternatives(
        subject=notification.subject,
        body=_render(f"emails/{notification.template}/body.txt", context),
        to=[notification.to],
        # A stable Message-ID: the one email of this row, recognisable downstream (and by tests).
        headers={"Message-ID": message_id(notification.pk)},
        connection=smtp,
    )
    email.attach_alternative(_render(f"emails/{notification.template}/body.html", context), "text/html")
    return email


def message_id(notification_id: str) -> str:
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "paydesk.local"
    return f"<{notification_id}@{domain}>"


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
    events = emit_events(events=[("notification.sent", n, notification_payload(n)) for n in notifications])
    _adopt_correlation_ids(events, notifications)


def _adopt_correlation_ids(events: list[OutboxEvent], notifications: list[Notification]) -> None:
    """Each event carries the correlation id of the change its email is about (a batch may span
    several changes), not the sending task's."""
    differing = {
        event.pk: notification.correlation_id
        for event, notification in zip(events, notifications, strict=True)
        if notification.correlation_id and event.correlation_id != notification.correlation_id
    }
    if differing:
        OutboxEvent.objects.filter(pk__in=list(differing)).update(
            correlation_id=Case(*(When(pk=pk, then=Value(cid)) for pk, cid in differing.items()))
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
            _fail(
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


def _render(name: str, context: dict[str, Any]) -> str:
    return get_template(name).render(context)


def _render_subject(template: str, context: dict[str, Any]) -> str:
    # One line, whatever the template's whitespace: a newline in a subject is a header injection.
    subject = " ".join(_render(f"emails/{template}/subject.txt", context).split())
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
