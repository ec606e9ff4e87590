"""One retry policy (exponential backoff, full jitter) and one broker-safe enqueue for every app."""

import logging

import pytest
from celery import shared_task

from apps.core.deferred import backoff_delay, enqueue


@shared_task(name="tests.core.deferred.noop")
def noop(*args):
    return list(args)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 8, 12])
def test_a_delay_is_within_zero_and_the_attempts_capped_ceiling(attempt):
    ceiling = min(5 * 2 ** (attempt - 1), 300)
    delays = [backoff_delay(attempt=attempt, base=5, maximum=300) for _ in range(200)]
    assert all(0 <= delay <= ceiling for delay in delays)


def test_delays_are_jittered_not_all_equal():
    delays = {backoff_delay(attempt=4, base=5, maximum=300) for _ in range(50)}
    assert len(delays) > 1


def test_the_ceiling_grows_with_the_attempt_until_the_maximum():
    highest = [max(backoff_delay(attempt=n, base=1, maximum=16) for _ in range(400)) for n in range(1, 8)]
    # the ceiling doubles: 1, 2, 4, 8, 16, then stays at the maximum
    assert highest[0] <= 1 < highest[2] <= 4 < highest[4] <= 16
    assert all(value <= 16 for value in highest)
    assert max(highest[5:]) > 8  # past the cap the spread is still [0, maximum], not [0, 0]


def test_a_delay_is_a_number_of_seconds_with_fractions():
    delays = [backoff_delay(attempt=3, base=2.5, maximum=600) for _ in range(50)]
    assert all(isinstance(delay, float) for delay in delays)
    assert any(delay != int(delay) for delay in delays)


def test_the_first_retry_never_waits_more_than_the_base():
    assert all(backoff_delay(attempt=1, base=7, maximum=600) <= 7 for _ in range(100))


def test_enqueue_returns_true_when_the_broker_takes_the_task(caplog):
    caplog.set_level(logging.WARNING, logger="apps.core.deferred")
    assert enqueue(noop, "a", 1, fallback="the sweep") is True
    assert enqueue(noop, "b", fallback="the sweep", countdown=2.5) is True
    assert not [record for record in caplog.records if record.name == "apps.core.deferred"]


def test_enqueue_returns_false_and_logs_when_the_broker_refuses(broker_down, caplog):
    caplog.set_level(logging.WARNING, logger="apps.core.deferred")

    assert enqueue(noop, "evt_1", fallback="reconciliation", countdown=3) is False

    [record] = [record for record in caplog.records if record.name == "apps.core.deferred"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "tests.core.deferred.noop" in message
    assert "evt_1" in message
    assert "reconciliation will pick it up" in message
    assert record.exc_info is not None
