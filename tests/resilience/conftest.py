"""Fault tests: real Celery workers this test starts (and may SIGKILL), on queues of its own.

Unlike tests/e2e's `celery_worker_process` (one worker for the whole test), `workers.start()` may
be called again after a worker was killed: every worker of the test consumes the same queues, so
a message the dead one held is redelivered to the next one. Only processes started here are
ever signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu import Exchange, Queue

from config.celery import app as celery_app
from tests.e2e.conftest import BROKER_URL, _delete_queues, _drop_connection_pools, _wait_for, routed_queues

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    def __init__(self, tmp_path: Path, broker_url: str) -> None:
        self.tmp_path = tmp_path
        self.broker_url = broker_url
        self.queue = f"resilience-{uuid.uuid4().hex[:10]}"
        self.queues = routed_queues(f"{self.queue}.")
        self.processes: list[subprocess.Popen] = []

    def all_queues(self) -> list[str]:
        return [self.queue, *self.queues.values()]

    def start(self, **extra_env: str) -> subprocess.Popen:
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "TEST_CACHE_PREFIX": os.environ.get("TEST_CACHE_PREFIX", "paydesk-test"),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "CELERY_DEFAULT_QUEUE": self.queue,
            "CELERY_QUEUE_PREFIX": f"{self.queue}.",
            **extra_env,
        }
        log_path = self.tmp_path / f"worker-{len(self.processes)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    ",".join(self.all_queues()),
                    "--pool",
                    "threads",
                    "--concurrency",
                    "2",
                    "--loglevel",
                    "INFO",
                    "--without-mingle",
                    "--without-gossip",
                    "--hostname",
                    f"{self.queue}-{len(self.processes)}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a SIGKILL takes all of it
            )
        process.log_path = log_path
        self.processes.append(process)
        _wait_for(
            lambda: b"ready" in log_path.read_bytes(), timeout=60, what="the worker to start", log=log_path
        )
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, the broker connection just drops."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.log_path.read_text(errors="replace")[-3000:] for p in self.processes)


@pytest.fixture
def workers(transactional_db, tmp_path):
    """`workers.start(**env)` starts one more worker on this test's queues; the test process sends
    its tasks there too (tasks are no longer eager). Everything is stopped and deleted afterwards."""
    pool = Workers(tmp_path, BROKER_URL)
    saved = {
        name: celery_app.conf[name]
        for name in ("task_always_eager", "broker_url", "task_default_queue", "task_routes", "task_queues")
    }
    celery_app.conf.update(
        task_always_eager=False,
        broker_url=pool.broker_url,
        task_default_queue=pool.queue,
        task_routes={
            task: {"queue": pool.queues[name]}
            for name, tasks in settings.CELERY_ROUTED_QUEUES.items()
            for task in tasks
        },
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in pool.all_queues()],
    )
    _drop_connection_pools()
    try:
        yield pool
    finally:
        for process in pool.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pool.kill(process)
        _delete_queues(pool.all_queues())
        celery_app.conf.update(**saved)
        _drop_connection_pools()


@pytest.fixture
def wait_for():
    return _wait_for
