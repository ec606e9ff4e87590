"""The address rules, and that the delivery path connects only to an address it checked (a name
that resolves to a public address at creation and to an internal one later reaches nothing)."""

import ipaddress
import json

import pytest

from apps.events import addresses
from apps.events.models import WebhookDelivery
from apps.events.transport import post
from apps.payments.services import payment_create
from tests.fakes.webhook_receiver import WebhookReceiver


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "not globally routable"),
        ("0.0.0.0", "unspecified"),  # noqa: S104  (an address refused, not bound)
        ("239.1.2.3", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:10.0.0.1", "private (inside ::ffff:a00:1)"),
        ("2002:7f00:1::", "loopback (inside 2002:7f00:1::)"),
        ("64:ff9b::7f00:1", "loopback (inside 64:ff9b::7f00:1)"),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:93.184.216.34", None),
    ],
)
def test_every_internal_address_is_refused_and_public_ones_pass(address, reason):
    assert addresses.refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.fixture
def dns(monkeypatch):
    """A resolver the test controls (the only DNS look-up the delivery path makes)."""
    answers: dict[str, list[str]] = {}

    def resolve(host, port):
        if host not in answers:
            raise OSError("no such host")
        return [ipaddress.ip_address(a) for a in answers[host]]

    monkeypatch.setattr(addresses, "resolve", resolve)
    return answers


def test_a_name_resolving_to_an_internal_address_is_refused_at_creation(db, user, dns, auth_client):
    dns["hooks.rebind.test"] = ["93.184.216.34", "10.0.0.7"]

    response = auth_client.post(
        "/api/v1/webhook-endpoints",
        {"url": "https://hooks.rebind.test/x", "enabled_events": ["*"]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_invalid"
    assert "10.0.0.7 is private" in response.json()["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_a_name_that_resolves_to_an_internal_address_later_gets_nothing(user, dns, endpoint_for, settings):
    with WebhookReceiver() as receiver:
        # given: at creation the name is a public address
        dns["hooks.rebind.test"] = ["93.184.216.34"]
        endpoint, _ = endpoint_for(
            user, f"http://hooks.rebind.test:{receiver.port}/x", events=["payment.succeeded"]
        )
        # when: it now resolves to the loopback, where something listens
        dns["hooks.rebind.test"] = ["127.0.0.1"]
        payment_create(actor=user, owner=user, amount=900, currency="USD", payment_method="tok_visa")

        # then: the connection is refused before it is opened; nothing reached the receiver
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
        assert delivery.last_error.startswith("refused: the address 127.0.0.1 is loopback")
        assert receiver.requests == []

        # and with private URLs allowed the same name is connected to the address the check saw
        # (the system resolver does not know it: the connection is pinned to our answer)
        settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
        outcome = post(f"http://hooks.rebind.test:{receiver.port}/x", body=b"{}", headers={})
        assert outcome.succeeded, outcome
        assert receiver.requests[0].headers["Host"] == f"hooks.rebind.test:{receiver.port}"
        assert json.loads(receiver.requests[0].body) == {}


def test_a_proxy_in_the_environment_is_not_used(monkeypatch, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: using it would fail
    with WebhookReceiver() as receiver:
        outcome = post(receiver.url, body=b"{}", headers={})

    assert outcome.succeeded, outcome
