"""A Celery worker stopped in the middle of a task never loses it (acks_late, reject on worker lost),
and a worker exports what its pool processes did.

Real `celery -A config worker` processes (prefork, one pool process) on the real RabbitMQ, each
test on a queue of its own. The task leaves a marker file when a run starts and when one
finishes, so the test sees every run.
"""

import os
import signal
import socket
import urllib.request
import uuid

import pytest
from celery import Celery
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families

from tests.workers import BROKER_URL, Worker, start_worker, wait_for

pytestmark = pytest.mark.e2e

TASK = "tests.ops.tasks.slow_job"


@pytest.fixture
def job(tmp_path):
    """Sends one slow job to a queue of this test's own; cleans the queue and workers up."""
    queue = f"ops-shutdown-{uuid.uuid4().hex[:10]}"
    markers = tmp_path / "markers"
    markers.mkdir()
    workers: list[Worker] = []

    class Job:
        id = uuid.uuid4().hex[:8]

        def worker(self, concurrency: int = 1, **extra_env: str) -> Worker:
            workers.append(
                start_worker(
                    queues=[queue],
                    log_path=tmp_path / f"worker-{len(workers)}.log",
                    pool="prefork",
                    concurrency=concurrency,
                    include=["tests.ops.tasks"],
                    env=extra_env,
                )
            )
            return workers[-1]

        def send(self, seconds: float) -> None:
            sender = Celery("ops-sender", broker=BROKER_URL)
            sender.send_task(TASK, args=[str(markers), self.id, seconds], queue=queue)
            sender.close()

        def runs_started(self) -> int:
            return len(list(markers.glob(f"{self.id}.started.*")))

        def finished(self) -> bool:
            return (markers / f"{self.id}.finished").exists()

        def messages_waiting(self) -> int:
            with Connection(BROKER_URL) as connection:
                return connection.default_channel.queue_declare(queue=queue, passive=True).message_count

    yield Job()
    for worker in workers:
        worker.kill()
    with Connection(BROKER_URL) as connection:
        connection.default_channel.queue_delete(queue=queue)
        connection.default_channel.exchange_delete(exchange=queue)


def test_sigterm_lets_the_running_task_finish_before_the_worker_exits(job):
    worker = job.worker()
    job.send(seconds=3)
    wait_for(lambda: job.runs_started() == 1, what="the task to start", log=worker.log_path)

    # when the orchestrator stops the worker mid-task (docker stop: SIGTERM, Celery's warm shutdown)
    worker.process.send_signal(signal.SIGTERM)

    # then the task runs to its end, the worker exits cleanly, and the message is acknowledged
    assert worker.process.wait(timeout=30) == 0
    assert job.finished()
    assert job.runs_started() == 1
    assert job.messages_waiting() == 0


def test_a_worker_killed_mid_task_leaves_the_message_for_the_next_worker(job):
    first = job.worker()
    job.send(seconds=3)
    wait_for(lambda: job.runs_started() == 1, what="the task to start", log=first.log_path)

    # when the machine loses the worker (SIGKILL: no shutdown at all)
    first.kill()

    # then the unacknowledged message goes back to the queue, and the next worker runs it
    assert not job.finished()
    wait_for(lambda: job.messages_waiting() == 1, what="the message to be requeued", timeout=15)
    second = job.worker()
    wait_for(job.finished, what="the next worker to run the task", log=second.log_path)
    assert job.runs_started() == 2


def test_a_pool_process_killed_mid_task_is_rejected_back_to_the_queue_and_rerun(job):
    worker = job.worker()
    job.send(seconds=3)
    wait_for(lambda: job.runs_started() == 1, what="the task to start", log=worker.log_path)

    # when the pool process running it dies (out of memory), the worker itself survives
    [pool_process] = worker.pool_pids()
    os.kill(pool_process, signal.SIGKILL)

    # then the message is rejected with requeue (reject_on_worker_lost) and the task runs again
    wait_for(job.finished, what="the task to be rerun", log=worker.log_path)
    assert job.runs_started() == 2
    assert worker.process.poll() is None


def test_a_prefork_worker_exports_the_outcomes_of_all_its_pool_processes(job, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    worker = job.worker(
        concurrency=2,
        CELERY_WORKER_METRICS_PORT=str(port),
        CELERY_WORKER_METRICS_ADDR="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker-metrics"),
    )
    for _ in range(4):
        job.send(seconds=0.5)  # four runs at once: both pool processes get work (fair scheduling)

    def successes() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "paydesk_celery_tasks_total"
            and sample.labels == {"task": TASK, "outcome": "success"}
        )

    wait_for(lambda: successes() == 4, what="four successes in the worker's metrics", log=worker.log_path)
    # added up from the pool processes' own files
    assert len(list((tmp_path / "worker-metrics").glob("counter_*.db"))) >= 2
