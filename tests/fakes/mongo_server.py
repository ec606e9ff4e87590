"""A MongoDB wire-protocol server for tests: `nx-27017` (on SQLite) as a subprocess on a free port.

No MongoDB server package is reachable from these machines; nx-27017 speaks the protocol pymongo
uses over TCP, so the code under test is plain pymongo. `stop()` and `start()` again (same data
file, same port) stand for an outage and a recovery.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.fakes.local_server import ServerProcess


class MongoServer(ServerProcess):
    name = "nx-27017"

    def __init__(self, directory: Path, *, database: str = "paydesk_raw") -> None:
        super().__init__(directory)
        self.database = database

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/{self.database}"

    def command(self) -> list[str]:
        executable = shutil.which("nx-27017", path=str(Path(sys.executable).parent)) or "nx-27017"
        return [
            executable,
            "--db",
            str(self.directory / "mongo.db"),
            "--port",
            str(self.port),
            "--log-file",
            str(self.directory / "nx.log"),
            "--pid-file",
            str(self.directory / "nx.pid"),
        ]
