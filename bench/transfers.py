"""A first benchmark of POST /api/v1/transfers, next to pgbench on the same PostgreSQL server.

    .venv/bin/python bench/transfers.py                      # 4 workers x 4 threads, 16 clients, 20 s
    .venv/bin/python bench/transfers.py --clients 32 --duration 60 --workers 8 --threads 4 --wallets 500

What it does, in order (nothing here is part of the test suite):
1. Drops and creates its own database `paydesk_bench` on the local PostgreSQL (--pg-url), migrates
   it, and seeds `--wallets` users, each with a USD wallet funded through the real deposit
   services (so the ledger is real) and a JWT access token.
2. Starts `gunicorn config.wsgi` with `--workers`/`--threads` (gthread), DEBUG off, the cache on
   Redis db 13 under the key prefix "bench", the money throttle lifted and Celery eager (so each
   transfer's outbox events are delivered inline, as in the embedded default).
3. Runs the load generator in its own process: `--clients` threads, each with one keep-alive
   http.client connection, sending transfers between random wallets for `--duration` seconds.
4. Stops gunicorn, runs `manage.py verify_ledger` on the bench database (the books must still
   prove), then `pgbench -i` and `pgbench -b tpcb-like -c N -T duration` on a scratch database
   `paydesk_pgbench` of the same server, and prints transfers/s, p50/p95/p99 latency, pgbench tps
   and the ratio. Both databases are dropped at the end unless --keep.

A transfer is ~12 statements in one transaction (lock two wallets, ledger entry + 2 postings,
one UPDATE, transaction row, 3 outbox rows, the audit row under the audit chain's global lock)
plus JWT auth, the money throttle, request handling (no Idempotency-Key sent) and the inline
outbox delivery; tpcb-like is 5
statements. The ratio says how much of the database's raw transaction rate the API keeps.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH_DB = "paydesk_bench"
PGBENCH_DB = "paydesk_pgbench"
SEED_BALANCE = 10_000_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=int, default=20, help="seconds of load, and of pgbench (default 20)"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients and pgbench -c (16)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (4)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (4)")
    parser.add_argument("--wallets", type=int, default=200, help="funded wallets to transfer between (200)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="server, no database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep both databases afterwards")
    # Internal: the load generator re-runs this file in its own process.
    parser.add_argument("--drive", metavar="SEED_FILE", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- orchestration -------------------------------------------------------------------------------


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"{args.pg_url}/{BENCH_DB}",
        REDIS_URL=args.redis_url,
        CACHE_KEY_PREFIX="bench",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        THROTTLE_MONEY="100000000/minute",
        JWT_ACCESS_MINUTES="240",
        CONN_MAX_AGE="600",
        # DEBUG off requires a real key; a throwaway one for a throwaway database.
        FIELD_ENCRYPTION_KEYS=f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}",
    )
    return env


def psql(args: argparse.Namespace, sql: str) -> None:
    subprocess.run(["psql", f"{args.pg_url}/postgres", "-qAt", "-c", sql], check=True)


def recreate_database(args: argparse.Namespace, name: str) -> None:
    psql(args, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(args, f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *command: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


SEED_SCRIPT = """
import json, sys
from apps.accounts.services import auth_session_start
from apps.payments.gateways.base import GatewayResult
from apps.wallets.services import wallet_create, wallet_deposit_settle, wallet_deposit_start
from apps.accounts.models import User

count, balance = int(sys.argv[1]), int(sys.argv[2])
seeded = []
for n in range(count):
    user = User.objects.create_user(f"bench-{n}@example.com", "bench-password-0123")
    wallet = wallet_create(actor=user, user=user, currency="USD")
    txn = wallet_deposit_start(actor=user, user=user, wallet_id=wallet.pk, amount=balance)
    wallet_deposit_settle(actor=user, transaction_id=txn.pk, result=GatewayResult(status="captured"))
    seeded.append({"wallet": wallet.pk, "token": auth_session_start(user=user).tokens.access})
json.dump(seeded, sys.stdout)
"""


def seed(args: argparse.Namespace, env: dict[str, str]) -> Path:
    # Seeding runs in a process configured exactly like the server (same environment).
    done = subprocess.run(
        [
            PYTHON,
            "-c",
            "import django, sys; django.setup(); exec(sys.stdin.read())",
            str(args.wallets),
            str(SEED_BALANCE),
        ],
        cwd=ROOT,
        env=env,
        input=SEED_SCRIPT,
        check=True,
        capture_output=True,
        text=True,
    )
    path = ROOT / "bench" / ".seed.json"
    path.write_text(done.stdout)
    return path


def start_server(args: argparse.Namespace, env: dict[str, str]) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--worker-class",
            "gthread",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.3)
    server.terminate()
    raise SystemExit("gunicorn did not become healthy within 30 s")


def run_load(args: argparse.Namespace, seed_file: Path) -> dict:
    done = subprocess.run(
        [
            PYTHON,
            __file__,
            "--drive",
            str(seed_file),
            "--clients",
            str(args.clients),
            "--duration",
            str(args.duration),
            "--port",
            str(args.port),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def run_pgbench(args: argparse.Namespace) -> float:
    recreate_database(args, PGBENCH_DB)
    url = f"{args.pg_url}/{PGBENCH_DB}"
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(args.pgbench_scale), url], check=True, capture_output=True
    )
    jobs = min(args.clients, os.cpu_count() or 1)
    done = subprocess.run(
        [
            "pgbench",
            "-b",
            "tpcb-like",
            "-c",
            str(args.clients),
            "-j",
            str(jobs),
            "-T",
            str(args.duration),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    match = re.search(r"tps = ([\d.]+)", done.stdout)
    if not match:
        raise SystemExit(f"could not read pgbench's tps:\n{done.stdout}")
    return float(match.group(1))


def main(args: argparse.Namespace) -> None:
    env = server_env(args)
    print(f"[bench] fresh database {BENCH_DB}, {args.wallets} funded wallets", flush=True)
    recreate_database(args, BENCH_DB)
    manage(env, "migrate", "--noinput")
    seed_file = seed(args, env)
    server = start_server(args, env)
    print(
        f"[bench] gunicorn {args.workers} workers x {args.threads} threads; "
        f"{args.clients} clients for {args.duration} s",
        flush=True,
    )
    try:
        load = run_load(args, seed_file)
    finally:
        server.terminate()
        server.wait(timeout=30)
        seed_file.unlink(missing_ok=True)
    verified = manage(env, "verify_ledger").strip()
    print(f"[bench] {verified}", flush=True)
    print(
        f"[bench] pgbench tpcb-like -c {args.clients} -T {args.duration} (scale {args.pgbench_scale})",
        flush=True,
    )
    tps = run_pgbench(args)
    if not args.keep:
        psql(args, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        psql(args, f'DROP DATABASE IF EXISTS "{PGBENCH_DB}" WITH (FORCE)')

    rate = load["completed"] / load["elapsed"]
    print()
    print(f"transfers/s        {rate:10.1f}   ({load['completed']} x 201 in {load['elapsed']:.1f} s)")
    print(f"latency p50        {load['p50_ms']:10.1f} ms")
    print(f"latency p95        {load['p95_ms']:10.1f} ms")
    print(f"latency p99        {load['p99_ms']:10.1f} ms")
    print(f"non-201 responses  {load['failed']:10d}   {load['statuses']}")
    print(f"pgbench tps        {tps:10.1f}")
    print(f"transfers / tps    {rate / tps:10.3f}")


# --- load generator (its own process) -----------------------------------------------------------


def drive(args: argparse.Namespace) -> None:
    seeded = json.loads(Path(args.drive).read_text())
    wallets = [row["wallet"] for row in seeded]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + args.duration

    def client(index: int) -> None:
        rng = random.Random(index)
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        mine: list[float] = []
        seen: dict[int, int] = {}
        while time.monotonic() < stop_at:
            source = rng.choice(seeded)
            destination = rng.choice(wallets)
            if destination == source["wallet"]:
                continue
            body = json.dumps(
                {
                    "source_wallet": source["wallet"],
                    "destination_wallet": destination,
                    "amount": rng.randint(1, 100),
                }
            )
            headers = {"Authorization": f"Bearer {source['token']}", "Content-Type": "application/json"}
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/transfers", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
                status = 0
            if status == 201:
                mine.append(time.perf_counter() - started)
            seen[status] = seen.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [0.0] * 99
    json.dump(
        {
            "completed": len(latencies),
            "failed": sum(count for status, count in statuses.items() if status != 201),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "elapsed": elapsed,
            "p50_ms": cuts[49] * 1000,
            "p95_ms": cuts[94] * 1000,
            "p99_ms": cuts[98] * 1000,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.drive:
        drive(arguments)
    else:
        main(arguments)
