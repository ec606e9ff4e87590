"""`make run`'s database: the embedded PostgreSQL holds racing money requests without a 500.

The server is started the way `make run` starts it (config.embedded_db.EmbeddedPostgres, the
wheel's PostgreSQL 18, as root too), on a throwaway data directory and a free port; a fresh
database is migrated with `manage.py migrate`; gunicorn serves the local settings (the embedded
defaults: eager tasks, local-memory cache, console email, simulated gateway) against it. On SQLite
13 of 20 parallel transfers and all 10 racing same-key payments answered 500 ("database is locked").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from config.embedded_db import EmbeddedPostgres, free_port, port_answers

pytestmark = pytest.mark.concurrency

ROOT = Path(__file__).resolve().parents[2]
# The test process's own services must not leak into the embedded defaults.
NOT_INHERITED = {
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REPLICA_DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "EMAIL_URL",
    "MONGO_URL",
}
PASSWORD = "embedded-Test-pass-91"


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedPostgres]:
    (ROOT / ".run").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="test-embedded-", dir=ROOT / ".run"))
    server = EmbeddedPostgres(workdir / "data", free_port(), durable=False)
    try:
        assert server.start() is True
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def site(embedded: EmbeddedPostgres) -> Iterator[str]:
    database = f"paydesk_{uuid.uuid4().hex[:8]}"
    embedded.create_database(database)
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": embedded.url(database)}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    with psycopg.connect(embedded.url(database)) as conn:
        assert conn.info.server_version >= 180000
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*command, "--workers", "1", "--threads", "20", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_answers("127.0.0.1", port, timeout=0.2):
            assert process.poll() is None, Path(log.name).read_text()[-3000:]
            assert time.monotonic() < deadline, Path(log.name).read_text()[-3000:]
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)
        Path(log.name).unlink(missing_ok=True)


def call(url: str, body: dict | None = None, *, token: str = "", key: str = "") -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers=headers, method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # a local test server
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def customer(site: str, name: str) -> tuple[str, str]:
    """A registered, logged-in customer with a funded USD wallet: (access token, wallet id)."""
    email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
    assert call(f"{site}/auth/register", {"email": email, "password": PASSWORD})[0] == 201
    status, login = call(f"{site}/auth/login", {"email": email, "password": PASSWORD})
    assert status == 200, login
    token = login["access"]
    status, wallet = call(f"{site}/wallets", {"currency": "USD"}, token=token)
    assert status == 201, wallet
    deposit = {"amount": 5_000, "payment_method": "tok_visa"}
    status, funded = call(
        f"{site}/wallets/{wallet['id']}/deposits", deposit, token=token, key=uuid.uuid4().hex
    )
    assert (status, funded["status"]) == (201, "completed"), funded
    return token, wallet["id"]


def test_parallel_transfers_all_succeed_or_are_refused_cleanly(site):
    alice, alice_wallet = customer(site, "alice")
    bob, bob_wallet = customer(site, "bob")

    def transfer(i: int) -> tuple[int, dict]:
        token, source, destination = (
            (alice, alice_wallet, bob_wallet) if i % 2 else (bob, bob_wallet, alice_wallet)
        )
        body = {"source_wallet": source, "destination_wallet": destination, "amount": 700}
        return call(f"{site}/transfers", body, token=token, key=f"transfer-{i}-{uuid.uuid4().hex}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(transfer, range(20)))

    assert all(status < 500 for status, _ in answers), answers
    for status, body in answers:
        assert (
            status == 201
            and body["status"] == "completed"
            or (status == 400 and body["error"]["code"] == "insufficient_funds")
        ), body
    owners = ((alice, alice_wallet), (bob, bob_wallet))
    balances = [call(f"{site}/wallets/{wallet}", token=token)[1]["balance"] for token, wallet in owners]
    assert sum(balances) == 10_000  # nothing created or lost
    assert min(balances) >= 0


def test_racing_payments_with_one_key_make_one_payment(site):
    token, _ = customer(site, "carol")
    body = {"amount": 1_234, "currency": "USD", "payment_method": "tok_visa", "description": "race"}

    def pay(_: int) -> tuple[int, dict]:
        return call(f"{site}/payments", body, token=token, key="one-key-for-ten")

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(pay, range(10)))

    assert all(status < 500 for status, _ in answers), answers
    created = {answer["id"] for status, answer in answers if status == 201}
    refused = [answer for status, answer in answers if status != 201]
    assert len(created) == 1, answers
    assert all(answer["error"]["code"] == "idempotency_key_in_use" for answer in refused), refused
    status, listed = call(f"{site}/payments", token=token)
    assert status == 200
    assert [payment["id"] for payment in listed["data"]] == list(created)
