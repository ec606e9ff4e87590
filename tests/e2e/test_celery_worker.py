"""`celery -A config worker` starts on the real broker and delivers outbox events."""

import json

import pytest
from django.db import transaction

from apps.core import outbox
from apps.core.correlation import reset_correlation_id, set_correlation_id
from apps.core.models import OutboxEvent

pytestmark = pytest.mark.e2e


def test_worker_delivers_a_committed_outbox_event(celery_worker_process, wait_for):
    token = set_correlation_id("trace-e2e-worker")
    try:
        with transaction.atomic():
            anchor = OutboxEvent.objects.create(event_type="anchor", aggregate_type="x", aggregate_id="1")
            event = outbox.emit_event(event_type="test.e2e", aggregate=anchor, payload={"n": 1})
    finally:
        reset_correlation_id(token)

    def delivered():
        return OutboxEvent.objects.filter(pk=event.pk, delivered_at__isnull=False).exists()

    wait_for(delivered, timeout=30, what="the worker to deliver the event")
    event.refresh_from_db()
    assert event.published_at is not None
    assert event.correlation_id == "trace-e2e-worker"
    # The worker's own log lines are JSON and carry the id of the request that caused the task.
    lines = [
        json.loads(line)
        for line in celery_worker_process.log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(line.get("correlation_id") == "trace-e2e-worker" for line in lines), lines[-5:]
