"""`manage.py check --deploy` on the production settings reports nothing but the one opt-in."""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_deploy_check_with_production_variables_is_clean():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "pay.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/paydesk",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "FIELD_ENCRYPTION_KEYS": "k1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "METRICS_TOKEN": secrets.token_urlsafe(32),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Preloading HSTS is a decision for the operator of the domain (README, "Production").
    reported = {line.split(")")[0].split("(")[-1] for line in output.splitlines() if "(security." in line}
    assert reported <= {"security.W021"}, output


@pytest.mark.parametrize(
    "missing",
    [
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "FIELD_ENCRYPTION_KEYS",
        "METRICS_TOKEN",
    ],
)
def test_production_refuses_to_start_without_its_required_variables(missing):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x" * 64,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/paydesk",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "FIELD_ENCRYPTION_KEYS": "k1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "METRICS_TOKEN": secrets.token_urlsafe(32),
    }
    del env[missing]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_refuses_to_start_with_an_empty_metrics_token():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": "x" * 64,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/paydesk",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "FIELD_ENCRYPTION_KEYS": "k1:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "METRICS_TOKEN": "  ",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "METRICS_TOKEN" in result.stderr
