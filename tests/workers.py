"""Real `celery -A config worker` processes on a real broker, for the tests whose tasks must cross
a process boundary (tests/e2e, tests/resilience, tests/ops).

Every worker gets a process group of its own, so killing it takes its pool processes with it; only
processes started here are ever signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test import override_settings
from kombu import Exchange, Queue

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]
BROKER_URL = os.environ.get("E2E_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
UNREACHABLE_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1


def wait_for(
    predicate: Callable[[], object], *, what: str, timeout: float = 60, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    detail = log.read_text(errors="replace")[-3000:] if log else ""
    raise AssertionError(f"timed out waiting for {what}\n{detail}")


@dataclass
class Worker:
    process: subprocess.Popen
    log_path: Path

    def stop(self, grace: float = 20) -> None:
        """SIGTERM (Celery's warm shutdown); SIGKILL if it is still there after `grace` seconds."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, the broker connection just drops."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def pool_pids(self) -> list[int]:
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:  # field 4 of stat: the parent's pid
                children.append(int(stat.parent.name))
        return children


def start_worker(
    *,
    queues: Sequence[str],
    log_path: Path,
    broker_url: str = BROKER_URL,
    pool: str = "threads",
    concurrency: int = 2,
    include: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Worker:
    """Starts a worker consuming `queues` (the first is its default queue) and returns once it is
    ready; one that never gets ready is stopped, and the failure shows the end of its log."""
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_DEFAULT_QUEUE": queues[0],
        **(env or {}),
    }
    command = [
        *(sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(queues)),
        *(("-I", ",".join(include)) if include else ()),
        *("--pool", pool, "--concurrency", str(concurrency), "--loglevel", "INFO"),
        *("--without-mingle", "--without-gossip"),
        # A node name of its own: two workers named alike (tests in parallel, or a test's second
        # worker) would fight over the same exclusive control queue (`<name>.celery.pidbox`).
        *("--hostname", f"{queues[0]}-{uuid.uuid4().hex[:6]}@%h"),
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(process, log_path)
    try:
        wait_for(lambda: b"ready" in log_path.read_bytes(), what="the worker to start", log=log_path)
    except AssertionError:
        worker.stop()
        raise
    return worker


@dataclass
class OwnQueues:
    """A test's default queue and every routed queue of the settings (notifications, billing, ...)
    under its name, so that tests running in parallel never take each other's tasks."""

    default: str
    routed: dict[str, str]

    @classmethod
    def new(cls, kind: str) -> OwnQueues:
        default = f"{kind}-{uuid.uuid4().hex[:10]}"
        return cls(default, {name: f"{default}.{name}" for name in settings.CELERY_ROUTED_QUEUES})

    @property
    def names(self) -> list[str]:
        return [self.default, *self.routed.values()]

    def worker_env(self) -> dict[str, str]:
        """A worker's environment for these queues, on the test's own database and cache."""
        db = connection.settings_dict
        return {
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "TEST_CACHE_PREFIX": os.environ.get("TEST_CACHE_PREFIX", "paydesk-test"),
            "CELERY_QUEUE_PREFIX": f"{self.default}.",
        }


@contextmanager
def tasks_sent_to(queues: OwnQueues, broker_url: str) -> Iterator[None]:
    """This process's tasks go through `broker_url` to `queues` instead of running eagerly; on exit
    the settings come back and the queues are deleted from the broker."""
    saved = {
        name: celery_app.conf[name]
        for name in ("task_always_eager", "broker_url", "task_default_queue", "task_routes", "task_queues")
    }
    celery_app.conf.update(
        task_always_eager=False,
        broker_url=broker_url,
        task_default_queue=queues.default,
        task_routes={
            task: {"queue": queues.routed[name]}
            for name, tasks in settings.CELERY_ROUTED_QUEUES.items()
            for task in tasks
        },
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in queues.names],
    )
    _drop_connection_pools()
    try:
        yield
    finally:
        _delete_queues(queues.names)
        celery_app.conf.update(**saved)
        _drop_connection_pools()


@contextmanager
def tasks_published_to(broker_url: str = UNREACHABLE_BROKER_URL) -> Iterator[None]:
    """Within the block this process publishes its tasks to `broker_url` instead of running them
    eagerly, and health's broker check looks there too. By default a port nobody listens on: every
    publish fails at once, as with the broker stopped."""
    saved = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.update(task_always_eager=False, broker_url=broker_url)
    _drop_connection_pools()
    try:
        with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
            yield
    finally:
        celery_app.conf.update(task_always_eager=saved[0], broker_url=saved[1])
        _drop_connection_pools()


def _drop_connection_pools() -> None:
    """Celery caches its broker connections and its queue/route tables; a new broker or new
    queues need new ones."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    for cached in ("queues", "default_queue", "router"):
        celery_app.amqp.__dict__.pop(cached, None)
    celery_app.amqp.flush_routes()


def _delete_queues(names: Sequence[str]) -> None:
    """The test's queues are its own: leave none behind on the shared broker."""
    try:
        with celery_app.connection_for_write() as conn:
            channel = conn.default_channel
            for name in names:
                channel.queue_delete(name)
    except Exception:  # best effort: a broker the test stopped has nothing left to clean
        return
