"""docker/healthcheck.py beat: healthy while beat keeps scheduling the outbox sweep."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def run_check() -> subprocess.CompletedProcess:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
    }
    return subprocess.run(
        [sys.executable, "docker/healthcheck.py", "beat"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def sweep_last_ran(ago: timedelta) -> None:
    every_30s, _ = IntervalSchedule.objects.get_or_create(every=30, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="outbox-sweep",
        defaults={
            "task": "apps.core.tasks.outbox_sweep",
            "interval": every_30s,
            "last_run_at": timezone.now() - ago,
        },
    )


def test_healthy_while_the_sweep_keeps_running():
    sweep_last_ran(timedelta(seconds=40))
    assert run_check().returncode == 0


def test_unhealthy_once_beat_stopped_scheduling():
    sweep_last_ran(timedelta(minutes=10))
    result = run_check()
    assert result.returncode == 1
    assert "outbox-sweep last ran at" in result.stderr


def test_unhealthy_before_beat_ever_ran():
    result = run_check()
    assert result.returncode == 1
    assert "last ran at None" in result.stderr
