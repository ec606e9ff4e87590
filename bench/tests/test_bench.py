"""The measuring instruments of bench/run.py, checked without the stack: the open-loop generator
against a local HTTP server, the CPU window, the drain wait and the targets' verdicts."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))
_spec = importlib.util.spec_from_file_location("bench_run_under_test", BENCH / "run.py")
run = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = run  # dataclasses look their module up while the module executes
_spec.loader.exec_module(run)
openloop = run.openloop


class Server:
    """A local HTTP server answering every POST with `status` after `delay` seconds."""

    def __init__(self, delay: float = 0.0, status: int = 201) -> None:
        outer = self
        self.delay, self.status, self.received = delay, status, 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received += 1
                time.sleep(outer.delay)
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def post(index: int):
    return "POST", "/api/v1/transfers", {"Content-Type": "application/json"}, b'{"n": %d}' % index


def test_open_loop_sends_the_scheduled_rate_to_a_fast_server_without_errors():
    server = Server()
    try:
        result = openloop.run("127.0.0.1", server.port, post, rate_per_second=40, seconds=1.5, connections=4)
    finally:
        server.close()
    assert result.scheduled == 60
    assert result.sent == server.received == 60
    assert result.unsent == 0
    assert result.errors == 0
    assert result.statuses == {"201": 60}
    # 60 answers from the first due time to the last answer, due 59/40 s later: never above that
    assert 10 < result.achieved_rps <= round(60 / (59 / 40), 1)


def test_open_loop_latency_counts_from_the_due_time_when_the_server_falls_behind():
    # 1 connection, 50 ms per answer: at most 20/s served, 40/s scheduled. A closed loop would
    # report ~50 ms; the open loop sees the queue grow.
    server = Server(delay=0.05)
    try:
        result = openloop.run("127.0.0.1", server.port, post, rate_per_second=40, seconds=1.0, connections=1)
    finally:
        server.close()
    # Request i is due at i/40 s but starts at i/20 s: about 20 fit in the 1 s run, ever later.
    assert 10 < result.sent < 30
    assert result.unsent == 40 - result.sent
    assert result.late_starts >= result.sent - 2
    assert result.p95_ms > 300
    assert result.achieved_rps < 25


def test_open_loop_counts_unexpected_statuses_and_refused_connections_as_errors():
    server = Server(status=500)
    try:
        result = openloop.run("127.0.0.1", server.port, post, rate_per_second=20, seconds=0.5, connections=2)
    finally:
        server.close()
    assert result.errors == result.sent == 10
    assert result.statuses == {"500": 10}
    assert result.achieved_rps == 0

    closed = Server()
    port = closed.port
    closed.close()
    result = openloop.run("127.0.0.1", port, post, rate_per_second=20, seconds=0.25, connections=1)
    assert result.statuses == {"socket_error": 5}
    assert result.errors == 5


def test_percentile_is_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert openloop.percentile(values, 50) == 50
    assert openloop.percentile(values, 95) == 95
    assert openloop.percentile(values, 99) == 99
    assert openloop.percentile([7.0], 99) == 7
    assert openloop.percentile([], 50) == 0


def test_cpu_window_keeps_exited_processes_counts_new_ones_from_zero_and_tells_reused_pids_apart():
    readings = iter(
        [
            # start: two backends and one worker process
            {"db": {(10, 1): 5.0, (11, 1): 2.0}, "worker": {(20, 1): 1.0}},
            # backend 11 exits, backend 12 appears, pid 10 is reused by a new process (start time 9)
            {"db": {(10, 1): 5.5, (12, 7): 0.25}, "worker": {(20, 1): 3.0}},
            {"db": {(10, 9): 0.5, (12, 7): 0.75}, "worker": {(20, 1): 4.0}},
        ]
    )
    window = run.CpuWindow(lambda: next(readings), interval=3600)  # samples only when asked
    window._sample()
    spent = window.stop()
    assert spent["db"] == pytest.approx(0.5 + 0.0 + 0.75 + 0.5)  # 10: +0.5, 11: kept, 12 and new 10 from 0
    assert spent["worker"] == pytest.approx(3.0)


def test_cpu_per_request_adds_the_kinds_up():
    assert run.cpu_per_request({"web": 0.3, "db": 0.1, "worker": 0.6}, 100) == {
        "web": 3.0,
        "db": 1.0,
        "worker": 6.0,
        "total": 10.0,
    }
    assert run.cpu_per_request({}, 0)["total"] == 0


def test_backlog_waits_for_two_empty_looks_in_a_row_and_flags_a_timeout():
    backlog = object.__new__(run.Backlog)
    looks = iter(
        [
            {"queued": 3, "outbox": 1, "notifications": 0},
            {"queued": 0, "outbox": 0, "notifications": 0},
            {"queued": 0, "outbox": 0, "notifications": 2},  # a consumer's email, not sent yet
            {"queued": 0, "outbox": 0, "notifications": 0},
            {"queued": 0, "outbox": 0, "notifications": 0},
        ]
    )
    backlog.left = lambda: next(looks)
    backlog.wait_empty(timeout=5, poll=0)
    assert backlog.drained is True
    assert next(looks, None) is None  # it looked until the second empty answer in a row

    backlog.left = lambda: {"queued": 1, "outbox": 0, "notifications": 0}
    backlog.wait_empty(timeout=0.05, poll=0.01)
    assert backlog.drained is False


def result(scenario: str, rps: float, p95: float = 10.0, p99: float = 20.0, **extra) -> run.Result:
    cpu = extra.pop("cpu", {})
    return run.Result(
        scenario=scenario,
        label=scenario,
        requests=100,
        seconds=10.0,
        rps=rps,
        p50_ms=5.0,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=p99,
        errors=extra.pop("errors", 0),
        statuses={},
        cpu_ms_per_request=cpu,
        extra=extra,
    )


def verdicts(results: list, clients: int = 16) -> dict[str, bool | None]:
    run.add_ratios(results)
    return {
        t.name.split(" ")[0] + " " + t.name.split(" ")[1]: t.passed for t in run.targets(results, clients)
    }


def test_targets_judge_each_ratio_latency_and_cpu_bound():
    cpu_ok = {"web": 3.0, "db": 2.0, "worker": 2.5, "total": 7.5}
    results = [
        result("ping", 1000),
        result("transfers", 450, p99=150, cpu=cpu_ok, drained=True),
        result("payments", 200),  # 20 % < 25 %
        result("payments_list", 850),
        result("transfers_batch", 10, items_per_request=100),  # 1,000 transfers/s
        result("open_loop_1000", 16.5, p95=40),
        result("open_loop_10000", 150, p95=120),  # 150 of 166.7/s: below 95 % of the rate
        result("pgbench", 3000),
    ]
    got = verdicts(results)
    assert got == {
        "transfers >=": True,
        "card payments": False,
        "cached list": True,
        "batched transfers": True,  # 1,000 / 3,000 = 33 %
        "CPU per": True,
        "open loop": False,  # the second open-loop row overwrites the first in this dict
    }
    first_open_loop = [t for t in run.targets(results, 16) if t.name.startswith("open loop 1,000")][0]
    assert first_open_loop.passed is True
    assert results[4].vs_pgbench == pytest.approx(1000 / 3000, abs=0.001)
    assert results[5].vs_floor is None  # open-loop runs are not compared with the closed-loop floor


def test_targets_fail_slow_transfers_and_do_not_pass_cpu_that_was_not_fully_counted():
    results = [
        result("ping", 1000),
        result("transfers", 450, p99=250, cpu={"web": 3, "db": 1, "worker": 1, "total": 5}, drained=False),
    ]
    got = verdicts(results)
    assert got["transfers >="] is False  # p99 over 200 ms
    assert got["CPU per"] is None  # the backlog was not drained: 5 ms is a lower bound only
    assert got["card payments"] is None  # not measured
    assert (
        verdicts([result("ping", 1000), result("transfers", 450, p99=150)], clients=32)["transfers >="]
        is False
    )
