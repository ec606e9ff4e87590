"""The sweep (what is due is sent, what is stuck mid-send is failed) and an operator's replay."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.dead_letters import replayer
from apps.core.deferred import enqueue
from apps.core.models import DeadLetter
from apps.notifications.models import Notification
from apps.notifications.services.sending import DEAD_LETTER_KIND, S, fail

SWEEP_LIMIT = 500


def notifications_sweep() -> tuple[int, int]:
    """Queues the sends that are due; fails the ones stuck mid-send. Returns (queued, failed).

    Due: a retry whose backoff is over, or a new email whose first send never ran (it is due
    NOTIFICATION_SWEEP_AFTER_SECONDS after it was written). Queuing is harmless where the send is
    happening anyway (the claim lets one through); a row stuck `sending` is failed, never resent,
    because it may have gone out.
    """
    now = timezone.now()
    due = list(
        Notification.objects.filter(status=S.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    enqueue_sends(due)
    stuck = Notification.objects.filter(
        status=S.SENDING,
        updated_at__lte=now - timedelta(seconds=settings.NOTIFICATION_SENDING_TIMEOUT_SECONDS),
    ).values_list("pk", flat=True)[:SWEEP_LIMIT]
    failed = sum(_fail_stuck(notification_id=notification_id) for notification_id in list(stuck))
    return len(due), failed


def enqueue_sends(notification_ids: Iterable[str]) -> None:
    """One send task (queue `notifications`) per batch of up to NOTIFICATION_SEND_BATCH emails."""
    from apps.notifications.tasks import send_notifications

    ids, size = list(notification_ids), settings.NOTIFICATION_SEND_BATCH
    for start in range(0, len(ids), size):
        # the broker is down: the rows are pending, the next sweep queues them again
        enqueue(send_notifications, ids[start : start + size], fallback="the sweep")


@transaction.atomic(durable=True)
def _fail_stuck(*, notification_id: str) -> bool:
    notification = (
        Notification.objects.select_for_update().filter(pk=notification_id, status=S.SENDING).first()
    )
    if notification is None:
        return False
    notification.last_error = "the worker stopped while sending: it may have been sent; replay to send again"
    notification.updated_at = timezone.now()
    fail(notification, reason=notification.last_error)
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
    transaction.on_commit(lambda: enqueue_sends([notification_id]))
    return notification


@replayer(DEAD_LETTER_KIND)
def _replay(letter: DeadLetter) -> None:
    notification_requeue(notification_id=letter.reference)
