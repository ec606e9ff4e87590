"""Celery entry points for webhooks: each loads by id and calls one service."""

from celery import shared_task

from apps.webhooks import services


@shared_task(acks_late=True, ignore_result=True)
def process_webhook_event(event_id: str) -> str:
    """Applies one stored provider event; failures are retried by the service with backoff."""
    return services.webhook_event_process(event_id=event_id).status


@shared_task(acks_late=True, ignore_result=True)
def sweep_webhook_events() -> int:
    """Queues events no task is coming for (stored while the broker was down, retries lost)."""
    return services.webhook_events_sweep()
