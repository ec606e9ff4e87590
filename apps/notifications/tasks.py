"""Celery entry points for notifications (queue `notifications`): each loads by id, calls one service."""

from celery import shared_task

from apps.notifications import services


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def send_notifications(self, notification_ids: list[str]) -> int:
    """Sends a batch of emails over one SMTP connection, each at most once; the ones that failed
    for now are retried (only they) with exponential backoff and jitter. Returns how many went out.

    The rows count the attempts and decide when to stop (NOTIFICATION_MAX_ATTEMPTS, then failed
    with a dead letter), so a task re-queued by the sweep or by a replay continues the same count.
    """
    sending = services.notifications_send(notification_ids=notification_ids)
    if sending.retry_ids:
        raise self.retry(args=[sending.retry_ids], countdown=sending.retry_in)
    return sum(1 for n in sending.notifications if n.status == services.S.SENT)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def send_notification(self, notification_id: str) -> str:
    """One email (tasks queued before sends were batched): as `send_notifications` of one."""
    delivery = services.notification_send(notification_id=notification_id)
    if delivery.retry_in is not None:
        raise self.retry(countdown=delivery.retry_in)
    return delivery.notification.status if delivery.notification else "missing"


@shared_task(acks_late=True, ignore_result=True)
def notifications_sweep() -> tuple[int, int]:
    """Periodic (beat `notifications-sweep`): re-queues lost sends, fails sends stuck mid-way."""
    return services.notifications_sweep()
