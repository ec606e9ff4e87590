"""`make run`'s seed step under the local settings, as config.embedded_db runs it: the welcome
emails are one line each on the console (whole in files), and the demo logins come last."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from apps.accounts.models import User
from config.embedded_db import split_logins

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
EMAILS = ("admin@paydesk.local", "reviewer@paydesk.local", "customer@paydesk.local", "merchant@paydesk.local")


def run_seed_demo(email_dir: Path) -> str:
    db = connection.settings_dict
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"EMAIL_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER"}
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "EMAIL_FILE_PATH": str(email_dir),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--base-url", "http://127.0.0.1:8000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_prints_one_line_per_email_and_the_logins_last(tmp_path):
    output = run_seed_demo(tmp_path / "emails")

    # no email dumped whole: one line each, naming who got what and where it is
    assert "<html" not in output.lower()
    assert "Content-Type" not in output
    email_lines = [line for line in output.splitlines() if line.startswith("email to ")]
    assert len(email_lines) == 4
    assert all('"Welcome to Paydesk"' in line for line in email_lines)
    files = sorted((tmp_path / "emails").glob("*.eml"))
    assert len(files) == 4
    assert all("<html" in path.read_text().lower() for path in files)
    assert {line.split(" -> ")[1] for line in email_lines} == {str(path) for path in files}
    assert User.objects.filter(email__in=EMAILS).count() == 4

    done, logins = split_logins(output)
    assert len(email_lines) == done.count("email to ")  # printed first, before the server starts
    assert "email to " not in logins
    for email in EMAILS:
        assert f"{email:<24} password: paydesk-demo-2024" in logins
    assert logins.startswith("Admin:")


def test_make_run_again_still_prints_the_logins(tmp_path):
    run_seed_demo(tmp_path / "first")

    again = run_seed_demo(tmp_path / "second")

    _, logins = split_logins(again)
    for email in EMAILS:
        assert f"{email:<24} password: paydesk-demo-2024" in logins
    assert not (tmp_path / "second").exists()  # nobody was welcomed twice
