"""Celery entry points of the audit app (queue `raw_logs`): copies of events to the MongoDB sink."""

from celery import shared_task
from django.conf import settings
from pymongo.errors import PyMongoError

from apps.audit import rawlog
from apps.core.deferred import backoff_delay


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def write_raw_log(self, event_id: str) -> bool:
    """Writes one event's document to MongoDB, retrying with backoff while MongoDB is unreachable;
    after RAW_LOG_MAX_ATTEMPTS the event is dead-lettered (replay queues this task again)."""
    try:
        return rawlog.raw_log_write(event_id=event_id)
    except PyMongoError as exc:
        attempts = self.request.retries + 1
        if attempts >= settings.RAW_LOG_MAX_ATTEMPTS:
            rawlog.raw_log_give_up(event_id=event_id, error=exc, attempts=attempts)
            return False
        raise self.retry(
            exc=exc,
            countdown=backoff_delay(
                attempt=attempts,
                base=settings.RAW_LOG_RETRY_BASE_SECONDS,
                maximum=settings.RAW_LOG_RETRY_MAX_SECONDS,
            ),
        )
