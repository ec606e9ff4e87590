"""README "Trying the API" runs as printed: its shell block, pasted into bash against a real server
(runserver on the test database, demo data from seed_demo), with jq and with the Python fallback."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from apps.payments.models import Payment

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def tour_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Trying the API\n", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.S)
    return block


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    port = _free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TEST_CACHE_PREFIX": os.environ.get("TEST_CACHE_PREFIX", "paydesk-test") + "-tour",
    }
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/v1/health/live", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(
            "the server did not start\n" + (tmp_path / "server.log").read_text(errors="replace")[-3000:]
        )
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def run_tour(url: str, path: str) -> list[dict]:
    result = subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", tour_block()],
        env={"PATH": path, "BASE": url, "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return [json.loads(line) for line in result.stdout.splitlines()]


def without_jq(tmp_path: Path) -> str:
    """A PATH with the tour's tools but no jq: the Python fallback of `field`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("curl", "date"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "python3").symlink_to(Path(sys.executable).resolve())  # not a shell shim (pyenv)
    return str(bin_dir)


@pytest.mark.parametrize("json_tool", ["default PATH", "python fallback"])
def test_the_readme_tour_runs_from_register_to_review(server, tmp_path, json_tool):
    path = os.environ["PATH"] if json_tool == "default PATH" else without_jq(tmp_path)

    answers = run_tour(server, path)

    registered, me, deposit, transfer, wallet, key_me, captured, refund, payment, reviewed = answers
    assert registered["email"].startswith("ada-")
    assert me["id"] == registered["id"] == key_me["id"]  # the API key acts for the user who made it
    assert (deposit["type"], deposit["status"], deposit["amount"]) == ("deposit", "completed", 5000)
    assert (transfer["type"], transfer["status"], transfer["amount"]) == ("transfer", "completed", 1500)
    assert wallet["balance"] == 3500
    assert (captured["status"], captured["amount_captured"]) == ("succeeded", 2500)
    assert (refund["status"], refund["amount"]) == ("succeeded", 1000)
    assert (payment["amount_captured"], payment["amount_refunded"]) == (2500, 1000)
    assert reviewed["status"] == "succeeded"
    assert reviewed["review"]["status"] == "approved"
    assert reviewed["review"]["note"] == "known customer"
    # what the server wrote
    stored = Payment.objects.get(pk=payment["id"])
    assert (stored.amount_captured, stored.amount_refunded, stored.status) == (2500, 1000, "succeeded")
    assert Payment.objects.get(pk=reviewed["id"]).review.status == "approved"
