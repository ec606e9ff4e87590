"""Celery entry points for notifications (queue `notifications`): each loads by id, calls one service."""

from celery import shared_task

from apps.notifications import services


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def send_notification(self, notification_id: str) -> str:
    """Sends one email at most once, retrying with exponential backoff and jitter.

    The row counts the attempts and decides when to stop (NOTIFICATION_MAX_ATTEMPTS, then failed
    with a dead letter), so a task re-queued by the sweep or by a replay continues the same count.
    """
    delivery = services.notification_send(notification_id=notification_id)
    if delivery.retry_in is not None:
        raise self.retry(countdown=delivery.retry_in)
    return delivery.notification.status if delivery.notification else "missing"


@shared_task(acks_late=True, ignore_result=True)
def notifications_sweep() -> tuple[int, int]:
    """Periodic (beat `notifications-sweep`): re-queues lost sends, fails sends stuck mid-way."""
    return services.notifications_sweep()
