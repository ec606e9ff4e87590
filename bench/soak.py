"""Soak: minutes of mixed traffic against the real stack, then the books proven and memory checked.

    .venv/bin/python bench/soak.py                  # 10 minutes (not part of CI)
    .venv/bin/python bench/soak.py --minutes 1      # a short run

It starts what `bench/run.py` starts (its own database, gunicorn, a Celery worker; the same
options apply, e.g. --workers, --clients), drives the "mixed" scenario of bench/scenario.lua (list
reads, no-ops, card payments, transfers, transfers into one hot wallet) in slices, and prints per
slice the requests/s, the statuses and the resident memory of the web and worker processes. At the
end it waits for the worker to drain, runs `verify_ledger` and `verify_audit_chain`, and fails if
either finds a problem, if any request got a 5xx, or if memory grew more than --max-growth between
the first and the last third of the run after its first slice, the warm-up (memory "flat").
"""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

_spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).with_name("run.py"))
run = importlib.util.module_from_spec(_spec)
sys.modules["bench_run"] = run  # its dataclasses look their module up by name
_spec.loader.exec_module(run)


def rss_mib(leader: int) -> float:
    """Resident memory of a process group (gunicorn's master and workers, the Celery worker)."""
    total_kib = 0
    for pid in run._group_pids(leader):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return round(total_kib / 1024, 1)


def main() -> int:
    soak = argparse.ArgumentParser(add_help=False)
    soak.add_argument("--minutes", type=float, default=10.0, help="how long the traffic runs (10)")
    soak.add_argument("--slice-seconds", type=int, default=30, help="seconds per printed slice (30)")
    soak.add_argument("--max-growth", type=float, default=0.10, help="allowed memory growth (0.10 = 10%%)")
    args = run.parse_args(description=__doc__ + "\nThe stack's options are bench/run.py's:", parents=[soak])
    queue = f"paydesk-soak-{secrets.token_hex(4)}"
    env = run.stack_env(args, queue)
    logs = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    seed_file = logs / "seed.txt"
    stack = run.Stack()
    samples: list[dict] = []
    queues = [queue]
    failures: list[str] = []
    try:
        run.recreate_database(args, run.BENCH_DB)
        run.clear_cache(args)
        run.run_python(env, "manage.py", "migrate", "--noinput", "-v", "0")
        run.run_python(
            env, str(run.BENCH / "seed.py"), "users", str(args.users), str(run.SEED_BALANCE), str(seed_file)
        )
        queues = run.queue_names(env)  # the default one and every routed one, this run's own
        port, server, worker = run.start_stack(args, env, stack, logs, queue)
        started = time.monotonic()
        deadline = started + args.minutes * 60
        while (remaining := deadline - time.monotonic()) > 1:
            raw = run.run_wrk(args, port, "mixed", seed_file, int(min(args.slice_seconds, max(remaining, 2))))
            sample = {
                "at_s": round(time.monotonic() - started),
                "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
                "statuses": raw["statuses"],
                "web_mib": rss_mib(server.pid),
                "worker_mib": rss_mib(worker.pid),
            }
            samples.append(sample)
            print(
                f"[soak] {sample['at_s']:5d} s  {sample['rps']:7.1f} req/s  {sample['statuses']}  "
                f"web {sample['web_mib']} MiB  worker {sample['worker_mib']} MiB",
                flush=True,
            )
        backlog = run.Backlog(args, queues)
        try:
            print(f"[soak] worker drained in {backlog.wait_empty():.1f} s", flush=True)
        finally:
            backlog.close()
        stack.stop()
        for check in ("verify_ledger", "verify_audit_chain"):
            print(f"[soak] {run.run_python(env, 'manage.py', check).strip().splitlines()[-1]}", flush=True)
        errors = sum(n for s in samples for status, n in s["statuses"].items() if status.startswith("5"))
        if errors:
            failures.append(f"{errors} request(s) answered 5xx")
        # The first slice is the warm-up (each thread opens its connections, code and caches load
        # on first use); "flat" is judged on the slices after it.
        steady = samples[1:] if len(samples) > 3 else samples
        third = max(1, len(steady) // 3)
        for part in ("web_mib", "worker_mib"):
            first = statistics.median(s[part] for s in steady[:third])
            last = statistics.median(s[part] for s in steady[-third:])
            growth = (last - first) / first if first else 0.0
            print(f"[soak] {part[:-4]} memory {first} -> {last} MiB ({growth:+.1%})", flush=True)
            if growth > args.max_growth:
                failures.append(f"{part[:-4]} memory grew {growth:.1%}")
    except SystemExit as exc:  # run.py's helpers stop with a message (e.g. verify_* found a problem)
        failures.append(str(exc))
    finally:
        stack.stop()
        if not args.keep:
            run.psql(args, f'DROP DATABASE IF EXISTS "{run.BENCH_DB}" WITH (FORCE)')
            for name in queues:
                run.delete_queue(args, name)
            run.clear_cache(args)
        shutil.rmtree(logs, ignore_errors=True)
    for failure in failures:
        print(f"[soak] FAILED: {failure}", file=sys.stderr)
    print(f"[soak] {'FAILED' if failures else 'OK'}: {len(samples)} slice(s)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
