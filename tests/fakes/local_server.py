"""What the servers the tests start as subprocesses share: a free port, start-and-wait, stop.

A subclass names its `command()` (and, if it needs one, its `environment()`); `start()` runs it,
with its output in `<directory>/server.log`, and returns once `ready()` (by default: the port
accepts a connection); `stop()` ends that process (SIGTERM, then SIGKILL to its process group)
and only it. `start()` after `stop()` runs it again on the same port and directory: an outage and
a recovery.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    name = "server"
    start_timeout = 20.0

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The server's environment; None: this process's."""
        return None

    def ready(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def start(self):
        log = self.directory / "server.log"
        with open(log, "ab") as output:
            # A session of its own: a server that forks (RabbitMQ's script runs the Erlang VM) is
            # one process group, which a stop that times out kills whole.
            self._process = subprocess.Popen(
                self.command(),
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {log.read_text(errors='replace')[-2000:]}")
            if self.ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready on port {self.port}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
