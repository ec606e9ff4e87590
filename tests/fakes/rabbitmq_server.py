"""A RabbitMQ node of the test's own (Debian's `rabbitmq-server`) on free ports, to stop and start.

Production's broker is RabbitMQ, so a broker outage is proven on one: this node has its own name,
AMQP and distribution ports, configuration, data and log directories under the test's directory,
and no plugins. Its queues are durable and Celery's messages persistent, so a restart on the same
directory finds what the queues held, as production's does. Stopping it sends SIGTERM to the node
this object started (RabbitMQ's own clean shutdown); the machine's shared broker on 5672 is never
touched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import amqp

from tests.fakes.local_server import ServerProcess, free_port

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # Debian's; /usr/sbin's wrapper would `su rabbitmq`


class RabbitMQServer(ServerProcess):
    name = "rabbitmq-server"
    start_timeout = 90.0  # an Erlang node boots in about 10 s on an idle 2-core machine

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.distribution_port = free_port()
        self.node = f"paydesk-test-{self.port}@localhost"
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "log.console = true\nlog.console.level = warning\nlog.file = false\n"
        )
        (self.directory / "enabled_plugins").write_text("[].\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def command(self) -> list[str]:
        return [SERVER if Path(SERVER).exists() else shutil.which("rabbitmq-server") or SERVER]

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.directory / "node.pid"),
            "RABBITMQ_DIST_PORT": str(self.distribution_port),
        }

    def ready(self) -> bool:
        # The listener opens late in the boot, but only an AMQP handshake says the node serves.
        try:
            connection = amqp.Connection(f"127.0.0.1:{self.port}", connect_timeout=0.5)
            connection.connect()
        except Exception:
            return False
        connection.close()
        return True
