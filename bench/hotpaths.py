"""Profiles one scenario in-process (run by `bench/run.py --profile SCENARIO`, not by hand).

    python bench/hotpaths.py SCENARIO SEED_FILE REQUESTS OUT_DIR
    python bench/hotpaths.py --top SCENARIO SEED_FILE REQUESTS N   # what `make bench` prints

Sends REQUESTS requests of the scenario through Django's test client (the whole middleware and DRF
stack, no network, no gunicorn) in the environment bench/run.py gives the server, and writes:
- OUT_DIR/profile-SCENARIO.txt: pyinstrument's call tree of all of them (where the time goes);
- OUT_DIR/cpu-SCENARIO.txt: cProfile's functions by own CPU time (what the web process burns,
  whatever the database and the network do meanwhile);
- OUT_DIR/queries-SCENARIO.txt: the SQL of one request (what each request costs the database),
  and the Redis commands it sent.
With --top it writes nothing: it prints the request's queries and Redis round trips, its CPU in this
process without a profiler, and cProfile's N functions by cumulative time over REQUESTS requests.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import random
import sys
import time
import uuid
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django_redis import get_redis_connection  # noqa: E402
from pyinstrument import Profiler  # noqa: E402


def requester(scenario: str, users: list[tuple[str, str]]):
    client = Client(HTTP_HOST="127.0.0.1")
    rng = random.Random(1)

    def send() -> int:
        token, wallet = rng.choice(users)
        destination = users[0][1] if scenario == "transfers_hot" else rng.choice(users)[1]
        while scenario.startswith("transfers") and destination == wallet:
            token, wallet = rng.choice(users)
        # After the source is final: a token of another user than the source wallet's is a 404.
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}
        if scenario == "ping":
            return client.get("/api/v1/ping", **headers).status_code
        if scenario == "payments_list":
            return client.get("/api/v1/payments", **headers).status_code
        if scenario == "payments":
            body = {"amount": rng.randint(100, 50000), "currency": "USD", "payment_method": "tok_visa"}
            path = "/api/v1/payments"
        else:
            body = {"source_wallet": wallet, "destination_wallet": destination, "amount": rng.randint(1, 100)}
            path = "/api/v1/transfers"
        response = client.post(path, json.dumps(body), content_type="application/json", **headers)
        if response.status_code >= 400:
            print("refused:", response.status_code, response.content[:300].decode(errors="replace"))
        return response.status_code

    return send


def warm(scenario: str, users: list[tuple[str, str]], send) -> None:
    """Every user's caches warm, as under a load that runs for a while (the session's state and
    user, the list a list scenario reads), and this process's imports and connections: what is
    measured is the warm path, not each user's first request."""
    client = Client(HTTP_HOST="127.0.0.1")
    for token, _wallet in users:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        client.get("/api/v1/ping", **headers)
        if scenario == "payments_list":
            client.get("/api/v1/payments", **headers)
    for _ in range(20):
        send()


class Recorder:
    """The SQL and Redis commands one request sends (Redis through its client, pipelines whole)."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.redis: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)

    def record(self, send) -> int:
        client_class = type(get_redis_connection("default"))
        pipeline_class = type(get_redis_connection("default").pipeline())
        original, original_pipeline = client_class.execute_command, pipeline_class.execute
        recorder = self

        def execute_command(self, *args, **options):
            recorder.redis.append(" ".join(str(a) for a in args[:2]))
            return original(self, *args, **options)

        def execute_pipeline(self, *args, **options):
            recorder.redis.append("PIPELINE " + ", ".join(str(c[0][0]) for c in self.command_stack))
            return original_pipeline(self, *args, **options)

        client_class.execute_command, pipeline_class.execute = execute_command, execute_pipeline
        try:
            with connection.execute_wrapper(self):
                return send()
        finally:
            client_class.execute_command, pipeline_class.execute = original, original_pipeline


def top(scenario: str, seed_file: Path, count: int, limit: int) -> None:
    users = [tuple(line.split()[:2]) for line in seed_file.read_text().splitlines() if line.strip()]
    send = requester(scenario, users)
    warm(scenario, users, send)
    recorder = Recorder()
    recorder.record(send)
    started = time.process_time()
    for _ in range(count):
        send()
    cpu_ms = (time.process_time() - started) * 1000 / count
    cpu = cProfile.Profile(time.process_time)
    statuses: dict[int, int] = {}
    cpu.enable()
    for _ in range(count):
        code = send()
        statuses[code] = statuses.get(code, 0) + 1
    cpu.disable()
    print(
        f"{scenario}: {count} requests in-process (Django test client), statuses {statuses}; "
        f"{len(recorder.sql)} queries and {len(recorder.redis)} Redis round trips per request; "
        f"{cpu_ms:.2f} ms CPU per request in this process without the profiler"
    )
    print("\n".join(cumulative_top(pstats.Stats(cpu), count, limit)))


def cumulative_top(stats: pstats.Stats, count: int, limit: int) -> list[str]:
    """The `limit` functions with the most cumulative CPU time, per request, below the request's
    wrappers: the test client, the handler and each middleware hold nearly all of it and say
    nothing, so the functions with at least 90 % of the whole are counted, not listed."""
    rows = stats.stats  # {(file, line, name): (cc, ncalls, tottime, cumtime, callers)}
    whole = max((row[3] for row in rows.values()), default=0.0) or 1e-9
    ranked = sorted(rows.items(), key=lambda item: -item[1][3])
    wrappers = [key for key, row in ranked if row[3] >= 0.9 * whole]
    lines = [
        f"top {limit} by cumulative CPU time, ms per request ({count} requests, {whole * 1000 / count:.2f} ms "
        f"each under the profiler; {len(wrappers)} wrappers holding >= 90 % not listed):",
        f"{'cum ms':>8} {'own ms':>8} {'calls':>7}  function",
    ]
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in ranked[
        len(wrappers) : len(wrappers) + limit
    ]:
        where = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        lines.append(
            f"{cumtime * 1000 / count:8.3f} {tottime * 1000 / count:8.3f} {ncalls / count:7.1f}  "
            f"{where}:{line}({name})"
        )
    return lines


def main() -> None:
    if sys.argv[1] == "--top":
        top(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    scenario, seed_file, count, out_dir = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    users = [tuple(line.split()[:2]) for line in seed_file.read_text().splitlines() if line.strip()]
    send = requester(scenario, users)
    warm(scenario, users, send)
    recorder = Recorder()
    status = recorder.record(send)
    summary = f"{len(recorder.sql)} queries and {len(recorder.redis)} Redis round trips per request"
    lines = [f"{scenario}: status {status}, {summary}", "", *recorder.sql, "", *recorder.redis]

    started = time.process_time()
    for _ in range(count):
        send()
    cpu_ms = (time.process_time() - started) * 1000 / count
    summary += f", {cpu_ms:.2f} ms CPU in this process (no profiler)"

    profiler = Profiler(interval=0.0005)
    profiler.start()
    statuses: dict[int, int] = {}
    for _ in range(count):
        code = send()
        statuses[code] = statuses.get(code, 0) + 1
    profiler.stop()
    lines[0] = f"{scenario}: status {status}, {summary}"
    (out_dir / f"queries-{scenario}.txt").write_text("\n".join(lines) + "\n")
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    (out_dir / f"profile-{scenario}.txt").write_text(f"{count} requests, statuses {statuses}\n\n{text}")

    cpu = cProfile.Profile(time.process_time)
    cpu.enable()
    for _ in range(count):
        send()
    cpu.disable()
    report = io.StringIO()
    stats = pstats.Stats(cpu, stream=report)
    stats.sort_stats("tottime").print_stats(60)
    stats.sort_stats("cumulative").print_stats(80)
    (out_dir / f"cpu-{scenario}.txt").write_text(report.getvalue())
    print(f"{scenario}: {summary}; {statuses}")


if __name__ == "__main__":
    main()
