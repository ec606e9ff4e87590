"""Deferred work: how long a retry waits, and handing a task to the broker without failing the caller.

Every app that retries (payments, refunds, inbound webhooks, notifications, raw logs, the outbox)
waits `backoff_delay(...)` seconds, and every app that queues work from a service publishes with
`enqueue(...)`: the row the task is about is already committed, so a broker that is down or refuses
must not turn the caller's success into an error. The caller names what picks the work up instead
(a sweep, reconciliation), and that goes in the log line.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task

logger = logging.getLogger(__name__)


def backoff_delay(*, attempt: int, base: float, maximum: float) -> float:
    """Seconds before retry number `attempt` (1 for the first retry): exponential backoff with full
    jitter, uniform in [0, min(base·2^(attempt-1), maximum)] (AWS's "full jitter": retries of many
    clients that failed together spread out instead of arriving together again)."""
    ceiling = min(base * 2 ** max(attempt - 1, 0), maximum)
    # bandit B311: backoff jitter, not a secret
    return round(random.uniform(0, ceiling), 3)  # nosec B311


def enqueue(task: Task, *args: Any, fallback: str, countdown: float | None = None, **options: Any) -> bool:
    """Publishes `task(*args)`; True if the broker took it.

    A broker that is down or refuses is logged, never raised: the work's row is committed already,
    and `fallback` (what will pick it up: "the sweep", "reconciliation") says who does it instead.
    """
    try:
        task.apply_async(args=list(args), countdown=countdown, **options)
    except Exception:  # the broker is down or refused; `fallback` queues the work again
        logger.warning("%s%s not queued; %s will pick it up", task.name, tuple(args), fallback, exc_info=True)
        return False
    return True
