import pytest

from apps.events.services import webhook_endpoint_create
from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.fixture
def private_urls(settings):
    """Webhooks may go to 127.0.0.1 (the tests' receiver), as WEBHOOK_ALLOW_PRIVATE_URLS allows."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def receiver(private_urls):
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def endpoint_for(db):
    """`endpoint_for(user, url, events=["*"])`: (endpoint, secret)."""

    def make(user, url, events=("*",)):
        result = webhook_endpoint_create(actor=user, user=user, url=url, enabled_events=list(events))
        return result.endpoint, result.secret

    return make
