"""Real processes for end-to-end tests: a Celery worker on the real broker, on the test database."""

import pytest

from tests.fakes.smtp_sink import SmtpSink
from tests.workers import BROKER_URL, OwnQueues, start_worker, tasks_sent_to
from tests.workers import wait_for as _wait_for


@pytest.fixture
def worker_env():
    """Extra environment for the test's worker (a test module overrides this fixture: an SMTP sink's
    EMAIL_URL, a MONGO_URL, its own CELERY_BROKER_URL, which the test process then uses too)."""
    return {}


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path, worker_env):
    """Starts `celery -A config worker` on queues of this test's own; tasks are no longer eager.

    The worker consumes the test's default queue and every routed queue (notifications, billing,
    webhooks, payments, raw_logs), all prefixed with the default queue's unique name, and the test
    process routes its tasks to the same names. The worker connects to the same test database as
    the test (data is committed: transactional_db).
    """
    queues = OwnQueues.new("e2e")
    broker_url = worker_env.get("CELERY_BROKER_URL", BROKER_URL)
    with tasks_sent_to(queues, broker_url):
        worker = start_worker(
            queues=queues.names,
            log_path=tmp_path / "worker.log",
            broker_url=broker_url,
            env={**queues.worker_env(), **worker_env},
        )
        try:
            yield worker
        finally:
            worker.stop()


@pytest.fixture
def wait_for():
    return _wait_for


@pytest.fixture
def smtp_sink():
    """An SMTP server in this process (aiosmtpd) that a worker's Django SMTP backend can send to."""
    with SmtpSink() as sink:
        yield sink
