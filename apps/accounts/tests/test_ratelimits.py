"""Fixed-window counters: the same answers on Redis (one script per hit) and on local memory."""

import time
import uuid

import pytest

from apps.accounts import ratelimits


@pytest.fixture
def name():
    return f"login:{uuid.uuid4().hex}"


def test_hits_are_counted_within_a_window_and_say_when_it_closes(cache_backend, name):
    windows = [ratelimits.hit(name, window_seconds=60) for _ in range(3)]

    assert [window.count for window in windows] == [1, 2, 3]
    assert all(59 <= window.retry_after <= 60 for window in windows)
    assert windows[2].exceeds(2)
    assert not windows[2].exceeds(3)
    assert ratelimits.hit(f"{name}-else", window_seconds=60).count == 1


def test_a_closed_window_starts_counting_again(cache_backend, name):
    ratelimits.hit(name, window_seconds=1)
    ratelimits.hit(name, window_seconds=1)
    time.sleep(1.1)

    assert ratelimits.hit(name, window_seconds=1).count == 1


def test_reset_forgets_the_count(cache_backend, name):
    ratelimits.hit(name, window_seconds=60)
    ratelimits.reset(name)

    assert ratelimits.hit(name, window_seconds=60).count == 1


def test_backoff_admits_the_free_attempts_then_locks_doubling_up_to_the_cap(cache_backend, name):
    admitted = [ratelimits.attempt(name, free=2, base_seconds=60, cap_seconds=600) for _ in range(3)]

    assert [(a.allowed, a.count) for a in admitted] == [(True, 1), (True, 2), (False, 2)]
    assert 59 <= admitted[2].retry_after <= 60
    lock_ms = [ratelimits.backoff_lock_ms(n, free=2, base_ms=60_000, cap_ms=600_000) for n in range(1, 8)]
    assert lock_ms == [0, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]


def test_reset_forgets_the_backoff(cache_backend, name):
    ratelimits.attempt(name, free=1, base_seconds=60, cap_seconds=600)
    ratelimits.reset(name)

    assert ratelimits.attempt(name, free=1, base_seconds=60, cap_seconds=600).allowed
