"""Carries the correlation id from whoever queued a task into the task's logs, audit rows, events."""

from celery import signals

from apps.core import correlation

# Not "correlation_id": Celery already uses that name for the task id (AMQP correlation).
_HEADER = "paydesk_correlation_id"
_tokens: dict[str, object] = {}


@signals.before_task_publish.connect
def _stamp_correlation_id(headers=None, **kwargs) -> None:
    cid = correlation.get_correlation_id()
    if headers is not None and cid and _HEADER not in headers:
        headers[_HEADER] = cid


@signals.task_prerun.connect
def _adopt_correlation_id(task_id=None, task=None, **kwargs) -> None:
    cid = getattr(task.request, _HEADER, None) if task else None
    cid = cid or correlation.get_correlation_id() or correlation.new_correlation_id()
    _tokens[task_id] = correlation.set_correlation_id(cid)


@signals.task_postrun.connect
def _restore_correlation_id(task_id=None, **kwargs) -> None:
    # A task run inline (eager) must not leave its id behind in the caller's context.
    token = _tokens.pop(task_id, None)
    if token is not None:
        correlation.reset_correlation_id(token)
