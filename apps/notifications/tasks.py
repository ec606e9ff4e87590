"""Celery entry points for notifications (queue `notifications`): each loads by id, calls one service."""

from celery import shared_task

from apps.notifications import services


@shared_task(acks_late=True, ignore_result=True)
def send_notifications(notification_ids: list[str]) -> int:
    """Sends a batch of emails over one SMTP connection, each at most once (queued by the sweep
    and by replays; new emails are sent by the task that wrote them). Returns how many went out.

    A failed send is not retried by this task: its row is due again after a backoff with jitter
    (NOTIFICATION_RETRY_*), and the sweep sends it then; the rows count the attempts and decide
    when to stop (NOTIFICATION_MAX_ATTEMPTS, then failed with a dead letter).
    """
    sending = services.notifications_send(notification_ids=notification_ids)
    return sum(1 for n in sending.notifications if n.status == services.S.SENT)


@shared_task(acks_late=True, ignore_result=True)
def send_notification(notification_id: str) -> str:
    """One email (tasks queued before sends were batched): as `send_notifications` of one."""
    delivery = services.notification_send(notification_id=notification_id)
    return delivery.notification.status if delivery.notification else "missing"


@shared_task(acks_late=True, ignore_result=True)
def notifications_sweep() -> tuple[int, int]:
    """Periodic (beat `notifications-sweep`): sends what is due, fails sends stuck mid-way."""
    return services.notifications_sweep()
