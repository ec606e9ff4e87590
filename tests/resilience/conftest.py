"""Fault tests: real Celery workers this test starts (and may SIGKILL), on queues of its own.

Unlike tests/e2e's `celery_worker_process` (one worker for the whole test), `workers.start()` may
be called again after a worker was killed: every worker of the test consumes the same queues, so
a message the dead one held is redelivered to the next one. Only processes started here are
ever signalled.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers import BROKER_URL, OwnQueues, Worker, start_worker, tasks_sent_to
from tests.workers import wait_for as _wait_for


class Workers:
    def __init__(self, tmp_path: Path, broker_url: str) -> None:
        self.tmp_path = tmp_path
        self.broker_url = broker_url
        self.queues = OwnQueues.new("resilience")
        self.started: list[Worker] = []

    def start(self, **extra_env: str) -> Worker:
        worker = start_worker(
            queues=self.queues.names,
            log_path=self.tmp_path / f"worker-{len(self.started)}.log",
            broker_url=self.broker_url,
            env={**self.queues.worker_env(), **extra_env},
        )
        self.started.append(worker)
        return worker

    def kill(self, worker: Worker) -> None:
        worker.kill()


@pytest.fixture
def workers(transactional_db, tmp_path):
    """`workers.start(**env)` starts one more worker on this test's queues; the test process sends
    its tasks there too (tasks are no longer eager). Everything is stopped and deleted afterwards."""
    pool = Workers(tmp_path, BROKER_URL)
    with tasks_sent_to(pool.queues, pool.broker_url):
        try:
            yield pool
        finally:
            for worker in pool.started:
                worker.stop()


@pytest.fixture
def wait_for():
    return _wait_for
