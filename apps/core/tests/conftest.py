"""Fixtures for core's idempotency tests: a paying user's client and the slow view's release."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.core.tests.idempotent_views import release_slow_view


@pytest.fixture
def payer_user():
    return User.objects.create_user("payer@example.com")


@pytest.fixture
def payer(payer_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(payer_user)
    return client


@pytest.fixture
def _release_slow_view():
    release_slow_view.clear()
    yield
    release_slow_view.set()
