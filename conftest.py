"""Fixtures shared by every app's tests and the cross-app suites in tests/."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (only this worker's keys: see config.settings.test)."""
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")
    else:
        cache.clear()
    return


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()
