"""An open-loop (constant-rate) load generator: requests are sent on a fixed schedule, whatever the
server's latency, and each one's latency counts from the moment it was due, not from when a free
connection happened to send it. Closed-loop wrk slows down with the server and so hides its queueing
("coordinated omission"); this does not. Used by bench/run.py; standard library only.

    run(host, port, make_request, rate_per_second=16.7, seconds=20, connections=32)

`make_request(index)` returns (method, path, headers, body bytes | None); every connection is one
keep-alive http.client connection of its own thread. A request whose answer is not
`expected_status`, or that fails on the socket (the connection is then reopened), is an error. The
run ends after `seconds`, as wrk2's does: a request still waiting for a free connection then is not
sent ("unsent"), so a server that cannot keep up shows a lower achieved rate and the latency of the
requests it was late for, instead of stretching the run.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Request = tuple[str, str, dict[str, str], bytes | None]


@dataclass
class OpenLoopResult:
    scheduled: int  # requests due within the run
    sent: int
    unsent: int  # due, but no connection was free before the run ended
    seconds: float  # from the first due time until the last answer
    achieved_rps: float  # answered requests per second of that span
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    late_starts: int  # requests that left more than 5 ms after they were due (no free connection)
    statuses: dict[str, int] = field(default_factory=dict)


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n * p / 100), at least the first
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def run(
    host: str,
    port: int,
    make_request: Callable[[int], Request],
    *,
    rate_per_second: float,
    seconds: float,
    connections: int = 32,
    expected_status: int = 201,
    timeout: float = 10.0,
) -> OpenLoopResult:
    if rate_per_second <= 0 or seconds <= 0:
        raise ValueError("rate and duration must be positive")
    total = max(1, int(rate_per_second * seconds))
    lock = threading.Lock()
    next_index = 0
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    counters = {"errors": 0, "late": 0, "sent": 0}
    last_answer = [0.0]
    start = time.monotonic() + 0.2  # every thread is waiting on its first slot before it is due
    end = start + seconds

    def worker() -> None:
        nonlocal next_index
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            while True:
                with lock:
                    index = next_index
                    next_index += 1
                if index >= total:
                    return
                due = start + index / rate_per_second
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif time.monotonic() >= end:
                    return  # the run is over; this request and the later ones stay unsent
                late = time.monotonic() - due > 0.005
                method, path, headers, body = make_request(index)
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = str(response.status)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                    status = "socket_error"
                answered = time.monotonic()
                with lock:
                    counters["sent"] += 1
                    counters["late"] += late
                    statuses[status] = statuses.get(status, 0) + 1
                    if status != str(expected_status):
                        counters["errors"] += 1
                    latencies.append((answered - due) * 1000)
                    last_answer[0] = max(last_answer[0], answered)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, connections))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    span = max(last_answer[0] - start, 1e-9)
    answered_ok = counters["sent"] - counters["errors"]
    return OpenLoopResult(
        scheduled=total,
        sent=counters["sent"],
        unsent=total - counters["sent"],
        seconds=round(span, 2),
        achieved_rps=round(answered_ok / span, 1),
        p50_ms=round(percentile(latencies, 50), 1),
        p95_ms=round(percentile(latencies, 95), 1),
        p99_ms=round(percentile(latencies, 99), 1),
        max_ms=round(latencies[-1], 1) if latencies else 0.0,
        errors=counters["errors"],
        late_starts=counters["late"],
        statuses=statuses,
    )
