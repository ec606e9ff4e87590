"""Real processes for end-to-end tests: a Celery worker on the real broker, on the test database."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("E2E_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _drop_connection_pools():
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """Starts `celery -A config worker` on a queue of this test's own; tasks are no longer eager.

    The worker connects to the same test database as the test (data is committed: transactional_db).
    """
    queue = f"e2e-{uuid.uuid4().hex[:10]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_CACHE_PREFIX": os.environ.get("TEST_CACHE_PREFIX", "paydesk-test"),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_DEFAULT_QUEUE": queue,
    }
    log_path = tmp_path / "worker.log"
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
                queue,
                "--pool",
                "threads",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    saved = (
        dict(celery_app.conf.items())
        if False
        else {
            "task_always_eager": celery_app.conf.task_always_eager,
            "broker_url": celery_app.conf.broker_url,
            "task_default_queue": celery_app.conf.task_default_queue,
        }
    )
    celery_app.conf.update(task_always_eager=False, broker_url=BROKER_URL, task_default_queue=queue)
    _drop_connection_pools()
    try:
        _wait_for(
            lambda: b"ready" in log_path.read_bytes(), timeout=60, what="the worker to start", log=log_path
        )
        process.log_path = log_path
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        celery_app.conf.update(**saved)
        _drop_connection_pools()


def _wait_for(predicate, *, timeout, what, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    detail = log.read_text(errors="replace")[-3000:] if log else ""
    raise AssertionError(f"timed out waiting for {what}\n{detail}")


@pytest.fixture
def wait_for():
    return _wait_for
