"""The versioned read-through cache: a write's bump hides every value cached before it, on Redis
(one script for all the scopes a write touched) and on the embedded default's local memory."""

import uuid

import pytest
from django.core.cache import cache

from apps.core import cache as versioned


@pytest.fixture
def scopes():
    return [f"test:{uuid.uuid4().hex}:{n}" for n in range(3)]


class Source:
    """Stands in for the database: counts loads, returns its current value."""

    def __init__(self, value):
        self.value, self.loads = value, 0

    def __call__(self):
        self.loads += 1
        return self.value


def test_a_value_is_loaded_once_then_served_from_the_cache(cache_backend, scopes):
    source = Source({"balance": 5})

    first = versioned.read_through(scope=scopes[0], key="k", load=source)
    second = versioned.read_through(scope=scopes[0], key="k", load=source)

    assert first == second == {"balance": 5}
    assert source.loads == 1


def test_a_bump_hides_what_was_cached_in_the_bumped_scopes_only(cache_backend, scopes):
    sources = [Source(n) for n in range(3)]
    for scope, source in zip(scopes, sources, strict=True):
        versioned.read_through(scope=scope, key="k", load=source)
        source.value += 10

    versions = [cache.get(f"{scope}:version") for scope in scopes]

    assert versioned.bump(scopes[:2]) == 2
    # each bumped once, however many round trips it took
    assert [cache.get(f"{scope}:version") for scope in scopes] == [
        versions[0] + 1,
        versions[1] + 1,
        versions[2],
    ]

    assert [
        versioned.read_through(scope=s, key="k", load=src) for s, src in zip(scopes, sources, strict=True)
    ] == [
        10,
        11,
        2,
    ]


def test_bumping_a_scope_never_read_caches_nothing(cache_backend, scopes):
    assert versioned.bump([scopes[0]]) == 0

    assert cache.get(f"{scopes[0]}:version") is None
