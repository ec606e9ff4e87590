"""Celery entry points of the audit app (queue `raw_logs`): copies of events to the MongoDB sink."""

from celery import shared_task
from django.conf import settings
from pymongo.errors import PyMongoError

from apps.audit import rawlog
from apps.core.deferred import backoff_delay


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def write_raw_logs(self, event_ids: list[str]) -> int:
    """Writes the events' documents to MongoDB (a delivery's worth, in one bulk write per
    collection), retrying with backoff while MongoDB is unreachable; after RAW_LOG_MAX_ATTEMPTS
    each event is dead-lettered (a replay queues its write again). Returns how many were written."""
    try:
        return rawlog.raw_log_write_many(event_ids=event_ids)
    except PyMongoError as exc:
        attempts = self.request.retries + 1
        if attempts >= settings.RAW_LOG_MAX_ATTEMPTS:
            for event_id in event_ids:
                rawlog.raw_log_give_up(event_id=event_id, error=exc, attempts=attempts)
            return 0
        raise self.retry(
            exc=exc,
            countdown=backoff_delay(
                attempt=attempts,
                base=settings.RAW_LOG_RETRY_BASE_SECONDS,
                maximum=settings.RAW_LOG_RETRY_MAX_SECONDS,
            ),
        )


@shared_task(acks_late=True, ignore_result=True)
def write_raw_log(event_id: str) -> None:
    """One event: tasks queued before writes were batched, handed on as a batch of one."""
    write_raw_logs.apply_async(args=[[event_id]])
