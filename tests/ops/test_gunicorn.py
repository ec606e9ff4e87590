"""gunicorn with docker/gunicorn.conf.py: several workers, one set of metrics, graceful shutdown."""

import json
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


def _start_gunicorn(tmp_path, **extra_env: str):
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
        **extra_env,
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
    process.port = port
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
    return process


def _stop(process) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def gunicorn(tmp_path):
    """gunicorn with the production config file, 2 workers, on the test database."""
    process = _start_gunicorn(tmp_path)
    try:
        yield process
    finally:
        _stop(process)


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


# --- a body over MAX_REQUEST_BODY_BYTES, over a real socket --------------------------------------


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (Content-Length framed) read off the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"the server closed before a full response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)
    }

    def more() -> bytes:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("the server closed in the middle of the response body")
        return chunk

    if headers.get("transfer-encoding", "").lower() == "chunked":
        decoded = b""
        while True:
            while b"\r\n" not in body:
                body += more()
            size_line, _, body = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(body) < size + 2:
                body += more()
            decoded, body = decoded + body[:size], body[size + 2 :]
            if size == 0:
                return int(status_line.split()[1]), headers, decoded
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        body += more()
    return int(status_line.split()[1]), headers, body[:length]


@pytest.fixture(params=["1", "2"], ids=["sync-worker", "threaded-worker-with-keepalive"])
def gunicorn_workers(request, tmp_path):
    """gunicorn as configured, with sync workers (GUNICORN_THREADS=1) and threaded ones (keep-alive)."""
    process = _start_gunicorn(tmp_path, GUNICORN_THREADS=request.param)
    try:
        yield process
    finally:
        _stop(process)


def test_a_body_over_the_limit_gets_its_413_and_leaves_the_connection_usable_or_closed_cleanly(
    gunicorn_workers,
):
    # given a client that sends a 6 MiB body (the limit is 1 MiB, the drain bound 8 MiB) in full on a kept-alive connection
    body = b'{"amount": 1000, "padding": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    request = (
        f"POST /api/v1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    ).encode() + body
    sent: list[BaseException | None] = []
    with socket.create_connection(("127.0.0.1", gunicorn_workers.port), timeout=20) as sock:

        def send_all() -> None:
            try:
                sock.sendall(request)
                sent.append(None)
            except OSError as exc:
                sent.append(exc)

        sender = threading.Thread(target=send_all)
        sender.start()

        # when the answer is read: it is the 413 envelope, not a reset connection
        status, headers, answer = _read_response(sock)
        sender.join(timeout=20)

        assert status == 413
        assert json.loads(answer)["error"]["code"] == "request_too_large"
        assert sent == [None]  # the whole body went out: the server read it rather than reset

        # then the same connection serves the next request, or was closed cleanly as announced
        if headers.get("connection", "").lower() == "close":
            assert sock.recv(65536) == b""  # an orderly FIN; a reset raises ConnectionResetError
        else:
            sock.sendall(b"GET /api/v1/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _read_response(sock)[0] == 200
