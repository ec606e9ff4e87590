"""Profiles one scenario in-process (run by `bench/run.py --profile SCENARIO`, not by hand).

    python bench/hotpaths.py SCENARIO SEED_FILE REQUESTS OUT_DIR

Sends REQUESTS requests of the scenario through Django's test client (the whole middleware and DRF
stack, no network, no gunicorn) in the environment bench/run.py gives the server, and writes:
- OUT_DIR/profile-SCENARIO.txt: pyinstrument's call tree of all of them (where the time goes);
- OUT_DIR/cpu-SCENARIO.txt: cProfile's functions by own CPU time (what the web process burns,
  whatever the database and the network do meanwhile);
- OUT_DIR/queries-SCENARIO.txt: the SQL of one request (what each request costs the database),
  and the Redis commands it sent.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
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
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}
        if scenario == "ping":
            return client.get("/api/v1/ping", **headers).status_code
        if scenario == "payments_list":
            return client.get("/api/v1/payments", **headers).status_code
        if scenario == "payments":
            body = {"amount": rng.randint(100, 50000), "currency": "USD", "payment_method": "tok_visa"}
            path = "/api/v1/payments"
        else:
            destination = users[0][1] if scenario == "transfers_hot" else rng.choice(users)[1]
            while destination == wallet:
                token, wallet = rng.choice(users)
            body = {"source_wallet": wallet, "destination_wallet": destination, "amount": rng.randint(1, 100)}
            path = "/api/v1/transfers"
        response = client.post(path, json.dumps(body), content_type="application/json", **headers)
        if response.status_code >= 400:
            print(response.status_code, response.content[:300], file=sys.stderr)
        return response.status_code

    return send


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


def main() -> None:
    scenario, seed_file, count, out_dir = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    users = [tuple(line.split()[:2]) for line in seed_file.read_text().splitlines() if line.strip()]
    send = requester(scenario, users)
    for _ in range(20):  # warm: imports, connections, caches
        send()
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
