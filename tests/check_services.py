"""Before the suite: are PostgreSQL, Redis and RabbitMQ reachable? If not, say how to start them and stop."""

import os
import socket
import sys
from urllib.parse import urlparse

DEFAULTS = {
    "PostgreSQL": (
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/paydesk"),
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    ),
    "Redis": (
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    ),
    # The end-to-end, resilience and operations tests run real Celery workers on it.
    "RabbitMQ": (
        os.environ.get("E2E_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
        "rabbitmq-server -detached",
    ),
}


def reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    missing = [(name, url, start) for name, (url, start) in DEFAULTS.items() if not reachable(url)]
    for name, url, start in missing:
        print(
            f"{name} is not reachable at {urlparse(url).netloc}. Start it with:\n    {start}", file=sys.stderr
        )
    if not missing:
        print(f"{', '.join(DEFAULTS)} are reachable.")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
