"""With DJANGO_SETTINGS_MODULE unset, the deployed entry points default to production settings.

Only `manage.py` and `make run` (config.embedded_db) default to the local ones (DEBUG, public key).
Each check imports the entry point in a fresh interpreter with the variable unset and reads what it
set; get_wsgi_application/get_asgi_application are replaced so production is not booted.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

READ_DEFAULT = """
import os, sys
import django.core.asgi, django.core.wsgi
django.core.wsgi.get_wsgi_application = django.core.asgi.get_asgi_application = lambda: None
import {module}
print(os.environ["DJANGO_SETTINGS_MODULE"])
"""


def run_unset(code: str, *args: str) -> str:
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, *args] if args else [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi", "config.celery", "config"])
def test_deployed_entry_points_default_to_production(module):
    assert run_unset(READ_DEFAULT.format(module=module)) == "config.settings.production"


def test_an_explicit_choice_is_kept():
    code = "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings.test'\n" + READ_DEFAULT.format(
        module="config.wsgi"
    )

    assert run_unset(code) == "config.settings.test"


def test_make_run_defaults_to_local():
    code = "from config.embedded_db import settings_module\nprint(settings_module())"

    assert run_unset(code) == "config.settings.local"


def test_make_run_keeps_an_explicit_choice(monkeypatch):
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.settings.production")
    code = "from config.embedded_db import settings_module\nprint(settings_module())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip() == "config.settings.production", result.stderr


def test_manage_py_defaults_to_local():
    code = "import os; print(os.environ['DJANGO_SETTINGS_MODULE'])"

    assert run_unset("", "manage.py", "shell", "-c", code) == "config.settings.local"
