"""Fixtures for the gateways app's tests."""

import pytest

from tests.fakes.stripe_server import FakeStripe


@pytest.fixture
def fake_stripe(settings):
    """A Stripe look-alike on a free local port; STRIPE_API_KEY and STRIPE_API_BASE point at it."""
    with FakeStripe() as server:
        settings.STRIPE_API_KEY = server.api_key
        settings.STRIPE_API_BASE = server.url
        yield server
