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
