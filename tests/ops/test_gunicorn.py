"""gunicorn with docker/gunicorn.conf.py: several workers, one set of metrics, graceful shutdown."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(tmp_path):
    """gunicorn with the production config file, 2 workers, on the test database."""
    port = _free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_CACHE_PREFIX": os.environ.get("TEST_CACHE_PREFIX", "paydesk-test") + "-gunicorn",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "METRICS_DB_CACHE_SECONDS": "0",
    }
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "docker/gunicorn.conf.py",
                "tests.ops.slow_wsgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process.url = f"http://127.0.0.1:{port}"
    process.log_path = log_path
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{process.url}/api/v1/health/live", timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("gunicorn did not start\n" + log_path.read_text(errors="replace")[-3000:])
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=20) as response:
        return response.status, response.read().decode()


def _gets(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "django_http_requests_total_by_method_total"
                and sample.labels["method"] == "GET"
            ):
                return sample.value
    return 0


def test_a_scrape_adds_up_every_worker_process(gunicorn):
    # given one worker busy with a slow request while 30 others are served: both workers serve
    busy = threading.Thread(target=_get, args=(f"{gunicorn.url}/slow?seconds=2&then=/api/v1/health/live",))
    busy.start()
    time.sleep(0.3)
    for _ in range(30):
        assert _get(f"{gunicorn.url}/api/v1/health/live")[0] == 200
    busy.join(timeout=10)

    # then whichever worker answers a scrape reports all of them, each scrape counting itself too
    # (the start-up probe may have been counted more than once: it retries until gunicorn answers)
    counts = [_gets(_get(f"{gunicorn.url}/api/v1/metrics")[1]) for _ in range(6)]
    assert counts[0] >= 33
    assert counts == [counts[0] + n for n in range(6)]
    # and both worker processes did serve (each writes files named after its pid)
    pids = {path.stem.rsplit("_", 1)[1] for path in (gunicorn.log_path.parent / "metrics").glob("*.db")}
    assert len(pids) == 2, pids
    # and the database state is part of every scrape
    assert "paydesk_metrics_database_up 1.0" in _get(f"{gunicorn.url}/api/v1/metrics")[1]


def test_sigterm_lets_a_request_in_flight_finish(gunicorn):
    results = {}

    def slow_request():
        results["slow"] = _get(f"{gunicorn.url}/slow?seconds=3")

    client = threading.Thread(target=slow_request)
    client.start()
    time.sleep(1)  # the request is being served

    # when the orchestrator stops the container
    gunicorn.send_signal(signal.SIGTERM)

    # then the request in flight is answered in full, and gunicorn exits cleanly afterwards
    client.join(timeout=15)
    assert results["slow"] == (200, "finished")
    assert gunicorn.wait(timeout=15) == 0
    # and it took no new connections once told to stop
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        _get(f"{gunicorn.url}/api/v1/health/live")
