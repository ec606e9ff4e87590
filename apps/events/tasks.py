"""Celery entry points of outbound webhooks (queue `outbound_webhooks` for the sends)."""

from __future__ import annotations

from celery import shared_task

from apps.events.services import deliveries_send, deliveries_sweep, events_purge


@shared_task(acks_late=True, ignore_result=True)
def send_webhook_deliveries(delivery_ids: list[str]) -> int:
    """Sends these deliveries (each claimed first: a duplicate task sends nothing twice)."""
    return len(deliveries_send(delivery_ids=list(delivery_ids)))


@shared_task(acks_late=True, ignore_result=True)
def sweep_webhook_deliveries() -> int:
    """Beat: queues the sends of due retries and of first sends lost with the broker."""
    return deliveries_sweep()


@shared_task(acks_late=True, ignore_result=True)
def purge_events() -> int:
    """Beat: drops events past their retention, with their deliveries."""
    return events_purge()
