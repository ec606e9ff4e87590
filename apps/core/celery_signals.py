"""Carries the correlation id from whoever queued a task into the task's logs, audit rows, events."""

from celery import signals

from apps.core import correlation

# Not "correlation_id": Celery already uses that name for the task id (AMQP correlation).
_HEADER = "paydesk_correlation_id"


@signals.before_task_publish.connect
def _stamp_correlation_id(headers=None, **kwargs) -> None:
    cid = correlation.get_correlation_id()
    if headers is not None and cid and _HEADER not in headers:
        headers[_HEADER] = cid


@signals.task_prerun.connect
def _adopt_correlation_id(task=None, **kwargs) -> None:
    cid = getattr(task.request, _HEADER, None) if task else None
    correlation.set_correlation_id(
        cid or correlation.get_correlation_id() or correlation.new_correlation_id()
    )
