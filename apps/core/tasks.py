import logging

from celery import shared_task

from apps.core import idempotency, outbox

logger = logging.getLogger(__name__)


class ConsumerFailed(Exception):
    pass


@shared_task(bind=True, acks_late=True, max_retries=8, default_retry_delay=5)
def deliver_outbox_event(self, event_id: str) -> None:
    failed = outbox.deliver_event(event_id=event_id)
    logger.debug(
        "outbox event %s delivered%s", event_id, f", {len(failed)} consumer(s) failed" if failed else ""
    )
    if failed:
        # Consumers that already ran are skipped on the retry (idempotent by event id).
        raise self.retry(
            exc=ConsumerFailed(f"{len(failed)} consumer(s) failed: {', '.join(failed)}"),
            countdown=min(5 * 2**self.request.retries, 600),
        )


@shared_task(acks_late=True)
def outbox_sweep() -> int:
    return outbox.sweep_outbox()


@shared_task(acks_late=True)
def purge_idempotency_records() -> int:
    return idempotency.purge_expired_records()
