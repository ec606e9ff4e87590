"""Real processes for end-to-end tests: a Celery worker on the real broker, on the test database."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu import Exchange, Queue

from config.celery import app as celery_app
from tests.fakes.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("E2E_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _drop_connection_pools():
    """Celery caches its broker connections and its queue/route tables; a new broker or new
    queues need new ones."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    for cached in ("queues", "default_queue", "router"):
        celery_app.amqp.__dict__.pop(cached, None)
    celery_app.amqp.flush_routes()


@pytest.fixture
def worker_env():
    """Extra environment for the test's worker (a test module overrides this fixture: an SMTP sink's
    EMAIL_URL, a MONGO_URL, its own CELERY_BROKER_URL, which the test process then uses too)."""
    return {}


def routed_queues(prefix: str) -> dict[str, str]:
    """Each routed queue of the settings (notifications, billing, ...) under this test's prefix."""
    return {name: f"{prefix}{name}" for name in settings.CELERY_ROUTED_QUEUES}


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path, worker_env):
    """Starts `celery -A config worker` on queues of this test's own; tasks are no longer eager.

    The worker consumes the test's default queue and every routed queue (notifications, billing,
    webhooks, payments, raw_logs), all prefixed with the default queue's unique name, and the test
    process routes its tasks to the same names. The worker connects to the same test database as
    the test (data is committed: transactional_db).
    """
    queue = f"e2e-{uuid.uuid4().hex[:10]}"
    prefix = f"{queue}."
    queues = routed_queues(prefix)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_CACHE_PREFIX": os.environ.get("TEST_CACHE_PREFIX", "paydesk-test"),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_DEFAULT_QUEUE": queue,
        "CELERY_QUEUE_PREFIX": prefix,
        **worker_env,
    }
    broker_url = env["CELERY_BROKER_URL"]
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
                ",".join([queue, *queues.values()]),
                "--pool",
                "threads",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                # A node name of its own: two workers named alike (tests in parallel) would fight
                # over the same exclusive control queue (`<name>.celery.pidbox`) on the broker.
                "--hostname",
                f"{queue}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    saved = {
        name: celery_app.conf[name]
        for name in ("task_always_eager", "broker_url", "task_default_queue", "task_routes", "task_queues")
    }
    celery_app.conf.update(
        task_always_eager=False,
        broker_url=broker_url,
        task_default_queue=queue,
        task_routes={
            task: {"queue": queues[name]}
            for name, tasks in settings.CELERY_ROUTED_QUEUES.items()
            for task in tasks
        },
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in [queue, *queues.values()]],
    )
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
        _delete_queues([queue, *queues.values()])
        celery_app.conf.update(**saved)
        _drop_connection_pools()


def _delete_queues(names):
    """The test's queues are its own: leave none behind on the shared broker."""
    try:
        with celery_app.connection_for_write() as conn:
            channel = conn.default_channel
            for name in names:
                channel.queue_delete(name)
    except Exception:  # best effort: a broker the test stopped has nothing left to clean
        return


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


@pytest.fixture
def smtp_sink():
    """An SMTP server in this process (aiosmtpd) that a worker's Django SMTP backend can send to."""
    with SmtpSink() as sink:
        yield sink
