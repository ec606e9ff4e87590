"""A `redis-server` of the test's own on a free port, to stop and start again (a broker outage).

It keeps its data in an append-only file in its directory, so a restart finds the queues it had,
as a real broker's restart does. Never the shared Redis on 6379.
"""

from __future__ import annotations

import shutil
import socket

from tests.fakes.local_server import ServerProcess


class RedisServer(ServerProcess):
    name = "redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--save",
            "",
        ]

    def ready(self) -> bool:
        # Listening is not enough: Redis answers LOADING while it replays its append-only file.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(64).startswith(b"+PONG")
        except OSError:
            return False
