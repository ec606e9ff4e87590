"""`make test`'s services: use what answers, start what does not, stop only what it started.

    tests/services.py [--dry-run] COMMAND...

- PostgreSQL: DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432/paydesk, CI's)
  when it answers; otherwise the embedded server of `make run` (config.embedded_db), on a free port
  with a throwaway data directory under .run/, exported to COMMAND as DATABASE_URL, then removed.
- Redis (REDIS_URL, default redis://127.0.0.1:6379/15) and RabbitMQ (E2E_BROKER_URL, default
  amqp://guest:guest@127.0.0.1:5672//): when one does not answer on a local address, Debian's
  package is installed if its binary is missing (`apt-get install -y redis-server rabbitmq-server`,
  as root, like CI; rabbitmq-server whenever it is missing, since the broker-outage test runs a
  node of its own) and the server is started; after COMMAND it is shut down again. A server that
  was already running is never stopped.

`--dry-run` says what it would do and runs nothing (no install, no start, no COMMAND).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
# COMMAND gets the environment as it was: importing `config` (its Celery app) defaults
# DJANGO_SETTINGS_MODULE to the production settings, which must not reach pytest.
ENVIRONMENT = dict(os.environ)
sys.path.insert(0, str(ROOT))

from config.embedded_db import EmbeddedPostgres, free_port, port_answers  # noqa: E402

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
DEFAULT_URLS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/paydesk",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "E2E_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
}
START_TIMEOUT = 120  # RabbitMQ's first boot (Erlang, the Mnesia database) takes a while


@dataclass
class Plan:
    """What the run needs done: the environment for COMMAND and the stops to run afterwards."""

    dry_run: bool
    apt_updated: bool = False
    env: dict[str, str] = field(default_factory=lambda: dict(ENVIRONMENT))
    stops: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def say(self, message: str) -> None:
        print(f"services: {message}", flush=True)


def _address(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def _wait_until_answers(host: str, port: int, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not port_answers(host, port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer on {host}:{port} within {START_TIMEOUT} s")
        time.sleep(0.5)


def _apt_install(plan: Plan, packages: list[str]) -> None:
    command = ["apt-get", "install", "-y", *packages]
    plan.say(f"installing Debian's {' '.join(packages)}: apt-get update && {' '.join(command)}")
    if plan.dry_run:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"installing {' '.join(packages)} needs root: run `sudo {' '.join(command)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not plan.apt_updated:
        subprocess.run(["apt-get", "update"], check=True, env=env)
        plan.apt_updated = True
    subprocess.run(command, check=True, env=env)


def postgresql(plan: Plan) -> None:
    url = plan.env.get("DATABASE_URL") or DEFAULT_URLS["DATABASE_URL"]
    host, port = _address(url, 5432)
    if port_answers(host, port):
        plan.say(f"PostgreSQL answers at {host}:{port}: using it")
        return
    plan.say(
        f"PostgreSQL does not answer at {host}:{port}: starting the embedded server (config.embedded_db)"
    )
    if plan.dry_run:
        return
    (ROOT / ".run").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="test-postgres-", dir=ROOT / ".run"))
    plan.stops.append(("removing its data directory", lambda: shutil.rmtree(workdir, ignore_errors=True)))
    server = EmbeddedPostgres(workdir / "data", free_port(), durable=False)
    plan.stops.append(("stopping the embedded PostgreSQL", server.stop))
    server.start()
    server.create_database("paydesk")
    plan.env["DATABASE_URL"] = server.url("paydesk")
    plan.say(f"embedded PostgreSQL 18 at {server.url('paydesk')}")


def redis(plan: Plan) -> None:
    url = plan.env.get("REDIS_URL") or DEFAULT_URLS["REDIS_URL"]
    host, port = _address(url, 6379)
    if port_answers(host, port):
        plan.say(f"Redis answers at {host}:{port}: using it")
        return
    if host not in LOCAL_HOSTS:
        raise RuntimeError(f"Redis does not answer at {host}:{port} (not a local address: start it there)")
    if shutil.which("redis-server") is None:
        _apt_install(plan, ["redis-server"])
    command = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port)]
    command += ["--save", "", "--appendonly", "no"]
    plan.say(f"Redis does not answer at {host}:{port}: starting {' '.join(command)}")
    if plan.dry_run:
        return

    def stop() -> None:
        # Redis's own protocol: no redis-cli needed. SHUTDOWN closes the connection without a reply.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"SHUTDOWN NOSAVE\r\n")
            sock.recv(64)

    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    plan.stops.append(("stopping Redis", stop))
    _wait_until_answers("127.0.0.1", port, "Redis")


def rabbitmq(plan: Plan) -> None:
    url = plan.env.get("E2E_BROKER_URL") or DEFAULT_URLS["E2E_BROKER_URL"]
    host, port = _address(url, 5672)
    if shutil.which("rabbitmq-server") is None:  # the broker-outage test runs a node of its own too
        _apt_install(plan, ["rabbitmq-server"])
    if port_answers(host, port):
        plan.say(f"RabbitMQ answers at {host}:{port}: using it")
        return
    if host not in LOCAL_HOSTS:
        raise RuntimeError(f"RabbitMQ does not answer at {host}:{port} (not a local address: start it there)")
    plan.say(f"RabbitMQ does not answer at {host}:{port}: starting rabbitmq-server -detached (port {port})")
    if plan.dry_run:
        return
    env = {**os.environ, "RABBITMQ_NODE_PORT": str(port), "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1"}
    subprocess.run(["rabbitmq-server", "-detached"], check=True, env=env)
    plan.stops.append(
        ("stopping RabbitMQ", lambda: subprocess.run(["rabbitmqctl", "stop"], check=False, env=env))
    )
    _wait_until_answers("127.0.0.1", port, "RabbitMQ")
    subprocess.run(["rabbitmqctl", "await_startup"], check=False, env=env, stdout=subprocess.DEVNULL)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="say what would be done, do nothing")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="run with the services up")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    plan = Plan(dry_run=args.dry_run)
    try:
        for ensure in (postgresql, redis, rabbitmq):
            ensure(plan)
        if args.dry_run or not args.command:
            return 0
        return subprocess.run(args.command, env=plan.env, check=False).returncode
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"services: {exc}", file=sys.stderr)
        return 1
    finally:
        for name, stop in reversed(plan.stops):
            plan.say(f"{name} (started for this run)")
            try:
                stop()
            except OSError as exc:
                print(f"services: {name} failed: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
