"""gunicorn for the web processes: `gunicorn --config docker/gunicorn.conf.py config.wsgi`.

Every value can be changed through the environment (the defaults suit the compose stack).

Graceful shutdown: on SIGTERM the master stops accepting connections and gives requests in flight
`graceful_timeout` seconds to finish before the workers are killed; the container's stop grace
period (compose `stop_grace_period`) must be longer.

Metrics: several worker processes serve /api/v1/metrics in turn, so each writes its samples to
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode) and any of them answers a
scrape with the sum. The directory is emptied when the master starts (files from a previous run
would be counted again) and a dead worker's files are marked as such.
"""

import os
from pathlib import Path

# Before any worker imports prometheus_client: the mode is chosen at import.
# (An empty value counts as unset: the directory is emptied at start, so it must never be ".".)
DEFAULT_MULTIPROC_DIR = "/tmp/paydesk-prometheus"  # noqa: S108  (a tmpfs in the compose stack)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or DEFAULT_MULTIPROC_DIR
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from prometheus_client import multiprocess  # noqa: E402  (after the environment is set)

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then (slow leaks), staggered so they never all restart at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# Only nginx reaches the web processes; it sets X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")
# Heartbeat files in memory: a slow container disk must not get workers killed as stuck.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# nginx writes the access log; the app logs JSON lines of its own.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "paydesk-web"


def on_starting(server):
    # Only prometheus_client's own files: whatever else the directory holds is not ours.
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)
