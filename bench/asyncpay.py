"""How long asynchronous payments (`Prefer: respond-async`) take to settle, for bench/run.py's
`payments_async` scenario: wrk measures how many 202s a second the API accepts; this reads, once the
stack's backlog has drained, how long each payment accepted during the measured load waited between
its acceptance and its outcome.

Acceptance is the payment row's `created_at` (written by the request); the outcome is the first
outbox event announcing where the worker's step took it (`payment.succeeded`, `.failed`,
`.review_opened`, `.requires_capture`, `.reconcile`), written in the step's settling transaction.
Both clocks are the machine's own (the web and worker processes run beside the database).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

OUTCOME_EVENTS = [
    "payment.succeeded",
    "payment.failed",
    "payment.review_opened",
    "payment.requires_capture",
    "payment.reconcile",
]
REQUESTED = "payment.processing_requested"

_SETTLE_TIMES_SQL = """
SELECT p.id, EXTRACT(EPOCH FROM (MIN(done.created_at) - p.created_at)) * 1000
FROM payments_payment AS p
JOIN core_outboxevent AS asked ON asked.aggregate_id = p.id AND asked.event_type = %s
LEFT JOIN core_outboxevent AS done ON done.aggregate_id = p.id AND done.event_type = ANY(%s)
WHERE p.created_at >= %s AND p.created_at < %s
GROUP BY p.id, p.created_at
"""


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def settle_times(db: Any, *, since: datetime, until: datetime) -> dict[str, Any]:
    """Settle latency (ms) of the asynchronous payments accepted in [since, until): p50, p95, p99,
    max, how many there were and how many had no outcome yet. `db`: a psycopg connection."""
    rows = db.execute(_SETTLE_TIMES_SQL, [REQUESTED, OUTCOME_EVENTS, since, until]).fetchall()
    settled = sorted(float(ms) for _, ms in rows if ms is not None)
    return {
        "async_payments": len(rows),
        "async_unsettled": sum(ms is None for _, ms in rows),
        "settle_p50_ms": round(percentile(settled, 50), 1),
        "settle_p95_ms": round(percentile(settled, 95), 1),
        "settle_p99_ms": round(percentile(settled, 99), 1),
        "settle_max_ms": round(settled[-1], 1) if settled else 0.0,
    }


def report_line(label: str, rps: float, extra: dict[str, Any]) -> str:
    return (
        f"{label:42} {rps:.1f} accepted/s (202); settled after p50 {extra['settle_p50_ms']:.0f} ms, "
        f"p95 {extra['settle_p95_ms']:.0f} ms, p99 {extra['settle_p99_ms']:.0f} ms, max "
        f"{extra['settle_max_ms']:.0f} ms ({extra['async_payments']} payments, "
        f"{extra['async_unsettled']} without an outcome)"
    )
