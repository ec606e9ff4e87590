"""How fast Paydesk moves money, measured against the machine's own ceilings in the same run.

    make bench                                   # or: .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --duration 30 --clients 32 --workers 4 --threads 4
    .venv/bin/python bench/run.py --scenarios ping,transfers --keep

What it does, in order (nothing here is part of the test suite; it needs PostgreSQL, Redis and
RabbitMQ on their usual local ports, and `wrk` and `pgbench` on the PATH):
1. Drops and recreates its own database `paydesk_bench`, migrates it, clears its own Redis keys
   (database --redis-db, prefix "bench") and seeds --users users through the real services, each
   with a funded USD wallet, a JWT access token and an API key (bench/seed.py).
2. Starts the real stack with config.settings.production and generated secrets: a Celery worker on
   a RabbitMQ queue of its own, and gunicorn (gthread, --workers x --threads) on a free port.
3. For each scenario: a short warm-up, then `wrk` with bench/scenario.lua for --duration seconds at
   --clients connections, every request as a random seeded user, every money-moving POST with a
   fresh Idempotency-Key. Between scenarios it waits for the worker to deliver every outbox event,
   so no scenario pays for the previous one's backlog.
     ping           GET /api/v1/ping: authenticated no-op, the framework's ceiling (the floor)
     payments       POST /api/v1/payments, simulated gateway, automatic capture (tok_visa)
     transfers      POST /api/v1/transfers between random wallets
     transfers_hot  POST /api/v1/transfers, every one into the same destination wallet
     payments_list  GET /api/v1/payments (first page of the caller's own), cache warm
4. Stops the stack, proves the books (`verify_ledger`, `verify_audit_chain`), then runs pgbench's
   built-in tpcb-like script on a scratch database of the same server at the same client count:
   the database's ceiling for a bank-transfer-shaped transaction.
5. Prints the table (requests/s, p50/p95/p99 latency, errors, ratio to the floor, transfers' ratio
   to pgbench) and saves it with a description of the machine as bench/results/<time>.json/.md.

Everything it starts (gunicorn, the worker, wrk, pgbench) it stops, and it drops both databases and
its RabbitMQ queue unless --keep. Other load on the machine skews the numbers: the load average at
the start is recorded with the results.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PYTHON = sys.executable
BENCH_DB = "paydesk_bench"
PGBENCH_DB = "paydesk_pgbench"
CACHE_PREFIX = "bench"
SEED_BALANCE = 1_000_000_000  # minor units per wallet: transfers of 1-100 never run a wallet dry
LIST_PAGE = 20  # payments per user, so the list scenario serves full pages

SCENARIOS = {
    "ping": "GET /ping (no-op floor)",
    "payments": "POST /payments (card, auto capture)",
    "transfers": "POST /transfers (random wallets)",
    "transfers_hot": "POST /transfers (one hot destination)",
    "payments_list": "GET /payments (cache warm)",
}
EXPECTED_STATUS = {"ping": 200, "payments": 201, "transfers": 201, "transfers_hot": 201, "payments_list": 200}
WRITES = {"payments", "transfers", "transfers_hot"}


def parse_args(
    argv: list[str] | None = None,
    *,
    description: str | None = None,
    parents: list[argparse.ArgumentParser] = (),
) -> argparse.Namespace:
    """The stack's options; a script built on this one (bench/soak.py) adds its own as `parents`."""
    parser = argparse.ArgumentParser(
        description=description or __doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds per scenario and for pgbench (20)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first (3)")
    parser.add_argument("--clients", type=int, default=16, help="wrk connections and pgbench -c (16)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (4)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (4)")
    parser.add_argument("--celery-concurrency", type=int, default=1, help="Celery worker threads (1)")
    parser.add_argument("--users", type=int, default=200, help="seeded users, one wallet each (200)")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of: {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every scenario (and pgbench) this many times, interleaved, and report each one's "
        "median round: other load on the machine moves single runs a lot (default 1)",
    )
    parser.add_argument("--no-pgbench", action="store_true", help="skip the pgbench ceiling")
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="server, no database")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379", help="server, no database")
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database for the stack's cache (12)")
    parser.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--keep", action="store_true", help="keep the databases and queue afterwards")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of load: profile each scenario in-process with pyinstrument (bench/hotpaths.py) and "
        "save the call trees and each request's SQL under bench/results/profiles/",
    )
    parser.add_argument("--profile-requests", type=int, default=300, help="requests per profiled scenario")
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="while each scenario's load runs, sample gunicorn's workers with py-spy (CPU only) and save "
        "the collapsed stacks and the functions that hold the most samples under bench/results/profiles/",
    )
    args = parser.parse_args(argv)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    return args


@dataclass
class Result:
    scenario: str
    label: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    statuses: dict[str, int]
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    drain_seconds: float | None = None
    vs_floor: float | None = None
    vs_pgbench: float | None = None
    extra: dict = field(default_factory=dict)


# --- processes this run starts, and stops --------------------------------------------------------


class Stack:
    """The processes this run started; `stop` ends exactly those (their process groups)."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    print(f"[bench] {name} did not stop on SIGTERM; killing it", flush=True)
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.processes.clear()


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _group_pids(leader: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == leader:
                    pids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return pids


class CpuMeter:
    """CPU seconds spent by the stack's parts: what a request costs, whatever else the machine runs.

    Requests per second depend on what else shares the cores; CPU milliseconds per request do not
    (much), so they are reported next to the rates. The database's share is that of the PostgreSQL
    backends connected to the bench database.
    """

    def __init__(self, args: argparse.Namespace, groups: dict[str, int]) -> None:
        self.args, self.groups = args, groups

    def sample(self) -> dict[str, float]:
        sample = {
            name: sum(_cpu_seconds(pid) for pid in _group_pids(leader))
            for name, leader in self.groups.items()
        }
        # BENCH_DB is this module's constant, not input.
        backends = psql(self.args, f"SELECT pid FROM pg_stat_activity WHERE datname = '{BENCH_DB}'")  # noqa: S608
        sample["postgres"] = sum(_cpu_seconds(int(pid)) for pid in backends.split())
        return sample


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_env(args: argparse.Namespace, queue: str) -> dict[str, str]:
    """config.settings.production with throwaway secrets for a throwaway database."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS=f"bench:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}",
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"{args.pg_url}/{BENCH_DB}",
        REDIS_URL=f"{args.redis_url}/{args.redis_db}",
        CACHE_KEY_PREFIX=CACHE_PREFIX,
        CELERY_BROKER_URL=args.broker_url,
        CELERY_TASK_ALWAYS_EAGER="false",
        CELERY_DEFAULT_QUEUE=queue,
        # The risk rules and the money throttle still run on every request; only their limits are
        # out of reach, so a benchmark user is neither held for review nor told to slow down.
        PAYMENT_VELOCITY_LIMIT="1000000000",
        THROTTLE_MONEY="1000000000/minute",
        JWT_ACCESS_MINUTES="600",
        # Connections outlive the run, so each thread keeps one backend throughout and the
        # backends' CPU can be read from start to end of a scenario.
        CONN_MAX_AGE="3600",
        LOG_LEVEL="WARNING",
    )
    return env


def psql(args: argparse.Namespace, sql: str, database: str = "postgres") -> str:
    done = subprocess.run(
        ["psql", f"{args.pg_url}/{database}", "-qAtX", "-c", sql], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def recreate_database(args: argparse.Namespace, name: str) -> None:
    psql(args, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(args, f'CREATE DATABASE "{name}"')


def run_python(env: dict[str, str], *command: str) -> str:
    done = subprocess.run([PYTHON, *command], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def clear_cache(args: argparse.Namespace) -> None:
    import redis

    client = redis.Redis.from_url(f"{args.redis_url}/{args.redis_db}")
    keys = list(client.scan_iter(match=f"{CACHE_PREFIX}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


def delete_queue(args: argparse.Namespace, queue: str) -> None:
    from kombu import Connection

    try:
        with Connection(args.broker_url, connect_timeout=3) as connection:
            connection.default_channel.queue_delete(queue)
    except Exception as exc:  # a leftover empty queue is untidy, not wrong
        print(f"[bench] could not delete queue {queue}: {exc}", flush=True)


def wait_healthy(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gunicorn did not become healthy within 60 s:\n{log.read_text()[-3000:]}")


def wait_worker_consuming(args: argparse.Namespace, queue: str, worker: subprocess.Popen, log: Path) -> None:
    """Until the worker consumes from its queue (RabbitMQ counts its consumer)."""
    from kombu import Connection

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the Celery worker exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(Exception), Connection(args.broker_url, connect_timeout=3) as connection:
            # Raises until the worker has declared its queue.
            if connection.default_channel.queue_declare(queue, passive=True).consumer_count:
                return
        time.sleep(0.5)
    raise SystemExit(f"the Celery worker did not start within 60 s:\n{log.read_text()[-3000:]}")


def wait_outbox_drained(args: argparse.Namespace, timeout: float = 300) -> float:
    """Seconds until the worker has delivered every outbox event (its backlog after a scenario)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        left = int(psql(args, "SELECT count(*) FROM core_outboxevent WHERE delivered_at IS NULL", BENCH_DB))
        if left == 0:
            return time.monotonic() - started
        time.sleep(0.5)
    print(f"[bench] outbox not drained after {timeout:.0f} s; going on", flush=True)
    return time.monotonic() - started


# --- load ---------------------------------------------------------------------------------------


def run_wrk(args: argparse.Namespace, port: int, scenario: str, seed_file: Path, seconds: int) -> dict:
    nonce = secrets.token_hex(4)
    command = [
        "wrk",
        f"-t{min(2, args.clients)}",
        f"-c{args.clients}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / "scenario.lua"),
        f"http://127.0.0.1:{port}",
        "--",
        scenario,
        str(seed_file),
        nonce,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^BENCH_RESULT (.*)$", done.stdout, re.MULTILINE)
    if done.returncode or not match:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(match.group(1))


def measure(args: argparse.Namespace, port: int, scenario: str, seed_file: Path, meter: CpuMeter) -> Result:
    if args.warmup:
        run_wrk(args, port, scenario, seed_file, args.warmup)
    spy = start_py_spy(args, meter.groups["gunicorn"], scenario) if args.py_spy else None
    before = meter.sample()
    raw = run_wrk(args, port, scenario, seed_file, args.duration)
    after = meter.sample()
    if spy is not None:
        summarize_py_spy(spy, scenario)
    seconds = raw["duration_us"] / 1e6
    expected = str(EXPECTED_STATUS[scenario])
    unexpected = sum(count for status, count in raw["statuses"].items() if status != expected)
    return Result(
        scenario=scenario,
        label=SCENARIOS[scenario],
        requests=raw["requests"],
        seconds=round(seconds, 2),
        rps=round(raw["requests"] / seconds, 1),
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=unexpected + raw["socket_errors"] + raw["timeouts"],
        statuses=raw["statuses"],
        cpu_ms_per_request={
            name: round((after[name] - before[name]) * 1000 / max(raw["requests"], 1), 2) for name in after
        },
    )


def start_py_spy(args: argparse.Namespace, gunicorn_pid: int, scenario: str) -> subprocess.Popen:
    out = RESULTS / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(Path(PYTHON).parent / "py-spy"),
            "record",
            "--pid",
            str(gunicorn_pid),
            "--subprocesses",
            "--duration",
            str(args.duration),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out / f"py-spy-{scenario}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarize_py_spy(spy: subprocess.Popen, scenario: str, top: int = 60) -> None:
    """Functions by the share of CPU samples they appear in (inclusive), from py-spy's raw stacks."""
    spy.wait(timeout=60)
    raw = RESULTS / "profiles" / f"py-spy-{scenario}.txt"
    if not raw.exists():
        print(f"[bench] py-spy recorded nothing for {scenario}", flush=True)
        return
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for frame in {
            re.sub(r" \((.*/site-packages/|/.*/bench-tree/|.*/main/)?", " (", f) for f in stack.split(";")
        }:
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])[:top]
    lines = [f"{scenario}: {total} CPU samples of gunicorn's workers; functions by inclusive share", ""]
    lines += [f"{count / total:6.1%}  {frame}" for frame, count in ranked]
    (RESULTS / "profiles" / f"py-spy-{scenario}-top.txt").write_text("\n".join(lines) + "\n")


def run_pgbench(args: argparse.Namespace) -> Result:
    recreate_database(args, PGBENCH_DB)
    url = f"{args.pg_url}/{PGBENCH_DB}"
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(args.pgbench_scale), url], check=True, capture_output=True
    )
    log_dir = Path(
        subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip()
    )
    try:
        done = subprocess.run(
            [
                "pgbench",
                "-b",
                "tpcb-like",
                "-c",
                str(args.clients),
                "-j",
                str(min(args.clients, os.cpu_count() or 1)),
                "-T",
                str(args.duration),
                "-l",
                "--log-prefix",
                str(log_dir / "tx"),
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=log_dir,
        )
        # Per-transaction log lines: client_id transaction_no time_us script_no epoch epoch_us
        latencies = sorted(
            int(line.split()[2]) for path in log_dir.glob("tx*") for line in path.read_text().splitlines()
        )
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    tps = float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] / 1000 if latencies else 0.0

    return Result(
        scenario="pgbench",
        label="pgbench tpcb-like (database ceiling)",
        requests=len(latencies),
        seconds=float(args.duration),
        rps=round(tps, 1),
        p50_ms=pct(50),
        p95_ms=pct(95),
        p99_ms=pct(99),
        max_ms=latencies[-1] / 1000 if latencies else 0.0,
        errors=int(failed.group(1)) if failed else 0,
        statuses={},
        extra={"scale": args.pgbench_scale},
    )


# --- the machine, the table ---------------------------------------------------------------------


def describe_machine(args: argparse.Namespace) -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    import redis

    redis_version = redis.Redis.from_url(f"{args.redis_url}/{args.redis_db}").info("server")["redis_version"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("[")[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": psql(args, "SHOW server_version"),
        "postgresql_synchronous_commit": psql(args, "SHOW synchronous_commit"),
        "redis": redis_version,
        "wrk": wrk_version.strip(),
        "commit": commit.stdout.strip(),
        "gunicorn": f"{args.workers} workers x {args.threads} threads (gthread)",
        "celery_worker": f"1 worker, {args.celery_concurrency} thread(s)",
        "clients": args.clients,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "users": args.users,
        "settings": "config.settings.production",
    }


def markdown(results: list[Result], machine: dict, command: str) -> str:
    lines = [
        "| scenario | req/s | p50 ms | p95 ms | p99 ms | errors | vs floor | vs pgbench "
        "| CPU ms/req web / db / worker |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        floor = f"{r.vs_floor:.0%}" if r.vs_floor is not None else ""
        pgb = f"{r.vs_pgbench:.0%}" if r.vs_pgbench is not None else ""
        lines.append(
            f"| {r.label} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.p99_ms:.1f} | {r.errors} "
            f"| {floor} | {pgb} | {_cpu_cell(r)} |"
        )
    described = ", ".join(f"{key}: {value}" for key, value in machine.items())
    return "\n".join([f"`{command}`", "", *lines, "", f"Machine: {described}", ""])


def _cpu_cell(r: Result) -> str:
    cpu = r.cpu_ms_per_request
    if not cpu:
        return ""
    return f"{cpu.get('gunicorn', 0):.1f} / {cpu.get('postgres', 0):.1f} / {cpu.get('worker', 0):.1f}"


def print_table(results: list[Result]) -> None:
    print()
    print(
        f"{'scenario':40} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'vs floor':>9} {'vs pgbench':>10}  CPU ms/req web / db / worker"
    )
    for r in results:
        floor = f"{r.vs_floor:.0%}" if r.vs_floor is not None else "-"
        pgb = f"{r.vs_pgbench:.0%}" if r.vs_pgbench is not None else "-"
        print(
            f"{r.label:40} {r.rps:8.1f} {r.p50_ms:8.1f} {r.p95_ms:8.1f} {r.p99_ms:8.1f} {r.errors:7d} "
            f"{floor:>9} {pgb:>10}  {_cpu_cell(r)}"
        )
    print()


def median_round(measured: list[Result]) -> Result:
    """The round with the median rate (its own latencies and CPU); every round's rate is kept."""
    ranked = sorted(measured, key=lambda r: r.rps)
    chosen = ranked[(len(ranked) - 1) // 2]
    if len(measured) > 1:
        chosen.extra["rps_of_each_round"] = [r.rps for r in measured]
    return chosen


def add_ratios(results: list[Result]) -> None:
    by_name = {r.scenario: r for r in results}
    floor, pgbench = by_name.get("ping"), by_name.get("pgbench")
    for r in results:
        if floor and r.scenario not in ("ping", "pgbench") and floor.rps:
            r.vs_floor = round(r.rps / floor.rps, 3)
        if pgbench and r.scenario.startswith("transfers") and pgbench.rps:
            r.vs_pgbench = round(r.rps / pgbench.rps, 3)


def save(results: list[Result], machine: dict, command: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = RESULTS / stamp
    payload = {"command": command, "machine": machine, "results": [asdict(r) for r in results]}
    base.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    base.with_suffix(".md").write_text(markdown(results, machine, command))
    return base


def profile(args: argparse.Namespace, env: dict[str, str], seed_file: Path) -> None:
    out = RESULTS / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    for scenario in args.scenarios:
        if scenario == "payments_list":
            run_python(env, str(BENCH / "seed.py"), "payments", str(LIST_PAGE), str(seed_file))
        print(
            "[bench] "
            + run_python(
                env,
                str(BENCH / "hotpaths.py"),
                scenario,
                str(seed_file),
                str(args.profile_requests),
                str(out),
            ).strip(),
            flush=True,
        )
    print(f"[bench] call trees and SQL in {out.relative_to(ROOT)}/", flush=True)


# --- the run ------------------------------------------------------------------------------------


def start_stack(
    args: argparse.Namespace, env: dict[str, str], stack: Stack, logs: Path, queue: str
) -> tuple[int, subprocess.Popen, subprocess.Popen]:
    """Starts the Celery worker and gunicorn on a migrated, seeded database; returns (port, web, worker)."""
    worker_log = logs / "worker.log"
    worker = stack.start(
        "celery worker",
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "--pool",
            "threads",
            "--concurrency",
            str(args.celery_concurrency),
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        env,
        worker_log,
    )
    wait_worker_consuming(args, queue, worker, worker_log)
    # Requests publish no outbox events (OUTBOX_RELAY, on in production): the relay does, in batches.
    relay_log = logs / "relay.log"
    stack.start("outbox relay", [PYTHON, "manage.py", "outbox_relay"], env, relay_log)
    port = free_port()
    server_log = logs / "gunicorn.log"
    server = stack.start(
        "gunicorn",
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
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
        env,
        server_log,
    )
    wait_healthy(port, server, server_log)
    return port, server, worker


def main(args: argparse.Namespace) -> None:
    for tool in ("wrk", "pgbench", "psql"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make bench installs wrk with apt-get)")
    command = "python bench/run.py " + " ".join(sys.argv[1:])
    queue = f"paydesk-bench-{secrets.token_hex(4)}"
    env = stack_env(args, queue)
    machine = describe_machine(args)
    logs = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    seed_file = logs / "seed.txt"
    stack = Stack()
    results: list[Result] = []
    succeeded = False
    try:
        print(f"[bench] fresh database {BENCH_DB}; {args.users} users with funded wallets", flush=True)
        recreate_database(args, BENCH_DB)
        clear_cache(args)
        run_python(env, "manage.py", "migrate", "--noinput", "-v", "0")
        run_python(env, str(BENCH / "seed.py"), "users", str(args.users), str(SEED_BALANCE), str(seed_file))
        if args.profile:
            profile(args, env, seed_file)
            succeeded = True
            return

        port, server, worker = start_stack(args, env, stack, logs, queue)
        meter = CpuMeter(args, {"gunicorn": server.pid, "worker": worker.pid})
        wait_outbox_drained(args)
        print(
            f"[bench] gunicorn {args.workers}x{args.threads} on :{port}, worker on queue {queue}; "
            f"{args.clients} clients, {args.warmup} s warm-up + {args.duration} s per scenario",
            flush=True,
        )
        rounds: dict[str, list[Result]] = {scenario: [] for scenario in args.scenarios}
        for number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"[bench] round {number} of {args.rounds}", flush=True)
            for scenario in args.scenarios:
                if scenario == "payments_list" and number == 1:
                    run_python(env, str(BENCH / "seed.py"), "payments", str(LIST_PAGE), str(seed_file))
                    wait_outbox_drained(args)
                result = measure(args, port, scenario, seed_file, meter)
                if scenario in WRITES:
                    result.drain_seconds = round(wait_outbox_drained(args), 1)
                print(
                    f"[bench] {scenario:14} {result.rps:8.1f} req/s  p50 {result.p50_ms:6.1f}  "
                    f"p95 {result.p95_ms:6.1f}  p99 {result.p99_ms:6.1f} ms  errors {result.errors}  "
                    f"{result.statuses}  CPU ms/request {result.cpu_ms_per_request}"
                    + (f"  worker drained in {result.drain_seconds} s" if result.drain_seconds else ""),
                    flush=True,
                )
                rounds[scenario].append(result)
        results.extend(median_round(measured) for measured in rounds.values())
        stack.stop()
        for check in ("verify_ledger", "verify_audit_chain"):
            print(f"[bench] {run_python(env, 'manage.py', check).strip().splitlines()[-1]}", flush=True)
        if not args.no_pgbench:
            print(
                f"[bench] pgbench tpcb-like -c {args.clients} -T {args.duration} (scale {args.pgbench_scale})",
                flush=True,
            )
            results.append(median_round([run_pgbench(args) for _ in range(args.rounds)]))
        succeeded = True
    finally:
        stack.stop()
        if not args.keep:
            psql(args, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            psql(args, f'DROP DATABASE IF EXISTS "{PGBENCH_DB}" WITH (FORCE)')
            delete_queue(args, queue)
            clear_cache(args)
        if succeeded:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            print(f"[bench] logs of the stack kept in {logs}", flush=True)

    add_ratios(results)
    print_table(results)
    base = save(results, machine, command)
    print(f"[bench] saved {base.with_suffix('.json').relative_to(ROOT)} and .md", flush=True)


if __name__ == "__main__":
    main(parse_args())
