import logging

from celery import shared_task
from django.conf import settings

from apps.core import idempotency, outbox
from apps.core.deferred import backoff_delay

logger = logging.getLogger(__name__)


class ConsumerFailed(Exception):
    pass


@shared_task(bind=True, acks_late=True, max_retries=8, default_retry_delay=5)
def deliver_outbox_events(self, event_ids: list[str]) -> None:
    """Delivers the events of one change (or of a sweep's batch), in order, as one batch
    (apps.core.outbox.deliver_events). Retried for the events whose consumers failed;
    consumers that already ran are skipped on the retry (idempotent by event id)."""
    failures = outbox.deliver_events(event_ids=event_ids)
    logger.debug("%d outbox event(s) delivered, %d with failed consumers", len(event_ids), len(failures))
    if failures:
        summary = "; ".join(f"{event_id}: {', '.join(failed)}" for event_id, failed in failures.items())
        raise self.retry(
            args=[list(failures)],
            exc=ConsumerFailed(f"consumers failed: {summary}"),
            countdown=backoff_delay(
                attempt=self.request.retries + 1,
                base=settings.OUTBOX_RETRY_BASE_SECONDS,
                maximum=settings.OUTBOX_RETRY_MAX_SECONDS,
            ),
        )


@shared_task(acks_late=True)
def outbox_sweep() -> int:
    return outbox.sweep_outbox()


@shared_task(acks_late=True)
def purge_idempotency_records() -> int:
    return idempotency.purge_expired_records()
