"""Every endpoint that takes a body refuses a field it does not have, as Stripe does.

The walk starts from the URLconf, not from a list: each POST/PUT/PATCH endpoint gets a body that
would succeed plus `"amout": 100`, and must answer 400 `parameter_unknown` naming `amout`, write no
row of any model, and keep no Idempotency-Key (the same key with the corrected body then runs). A
new endpoint without a row in `VALID` below fails the walk until it gets one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from apps.accounts.models import Roles
from apps.accounts.services import api_key_create, auth_session_start, password_reset_token_create
from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.core.tests.rows import row_counts
from apps.events.tests.factories import webhook_endpoint_and_delivery
from apps.payments.services import payment_create
from apps.payouts.services import payout_create
from apps.subscriptions.services import subscription_create
from apps.wallets.services import wallet_create, wallet_deposit

BODY_METHODS = ("post", "put", "patch")
# Inbound provider events: the provider's own, signed, free-form payloads (not our input contract).
NOT_OUR_INPUT = {"webhooks-stripe", "webhooks-authorize-net"}


def _walk(resolver: URLResolver, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern, route)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "view_class", None)
            for method in BODY_METHODS:
                if view_class is not None and hasattr(view_class, method) and route.startswith("api/"):
                    yield method, route, pattern.name or route


ENDPOINTS = sorted(
    (method, route, name) for method, route, name in _walk(get_resolver()) if name not in NOT_OUR_INPUT
)


class World:
    """Customer A's objects (one per endpoint that changes one) and a reviewer."""

    def __init__(self) -> None:
        self.a = UserFactory()
        self.b = UserFactory()
        self.reviewer = UserFactory(is_staff=True, roles=[Roles.REVIEWER])
        self.wallet = wallet_create(actor=self.a, user=self.a, currency="USD")
        wallet_deposit(
            actor=self.a, user=self.a, wallet_id=self.wallet.pk, amount=50_000, payment_method="tok_visa"
        )
        self.b_wallet = wallet_create(actor=self.b, user=self.b, currency="USD")
        # at DEPOSIT_REVIEW_AMOUNT_THRESHOLD: held in review, nothing credited
        self.held_deposit = wallet_deposit(
            actor=self.a, user=self.a, wallet_id=self.wallet.pk, amount=1_000_000, payment_method="tok_visa"
        )

        def payment(**extra: Any):
            fields = {"amount": 1_000, "currency": "USD", "payment_method": "tok_visa", **extra}
            return payment_create(actor=self.a, owner=self.a, **fields)

        self.to_capture = payment(capture_method="manual")
        self.to_cancel = payment(capture_method="manual")
        self.captured = payment()
        self.in_review = payment(payment_method="tok_riskLevelElevated")
        self.subscription = subscription_create(
            actor=self.a,
            owner=self.a,
            plan_id="plan_basic",
            amount=500,
            currency="USD",
            billing_cycle="monthly",
            payment_method="tok_visa",
        )

        self.payout = payout_create(
            actor=self.a, user=self.a, wallet_id=self.wallet.pk, amount=1_000, destination="btok_success"
        )
        self.endpoint, self.delivery = webhook_endpoint_and_delivery(self.a)

    def client(self, user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_session_start(user=user).tokens.access}")
        return client


# url name -> (path kwargs, a body that succeeds, who sends it); `w` is the World.
VALID: dict[str, Callable[[World], tuple[dict[str, str], dict[str, Any], Any]]] = {
    "auth-register": lambda w: ({}, {"email": "new@example.com", "password": "a long passphrase 42"}, None),
    "auth-login": lambda w: ({}, {"email": w.a.email, "password": DEFAULT_PASSWORD}, None),
    "auth-refresh": lambda w: ({}, {"refresh": auth_session_start(user=w.a).tokens.refresh}, None),
    "auth-logout": lambda w: ({}, {"refresh": auth_session_start(user=w.a).tokens.refresh}, None),
    "api-keys": lambda w: ({}, {"name": "another"}, w.a),
    "wallets": lambda w: ({}, {"currency": "EUR"}, w.a),
    "wallet-deposits": lambda w: (
        {"wallet_id": w.wallet.pk},
        {"amount": 1_000, "payment_method": "tok_visa"},
        w.a,
    ),
    "transfers": lambda w: (
        {},
        {"source_wallet": w.wallet.pk, "destination_wallet": w.b_wallet.pk, "amount": 1_000},
        w.a,
    ),
    "transfers-batch": lambda w: (
        {},
        {"transfers": [{"source_wallet": w.wallet.pk, "destination_wallet": w.b_wallet.pk, "amount": 1_000}]},
        w.a,
    ),
    "auth-password": lambda w: (
        {},
        {"current_password": DEFAULT_PASSWORD, "new_password": "another long passphrase 43"},
        w.a,
    ),
    "auth-password-reset": lambda w: ({}, {"email": w.a.email}, None),
    "auth-password-reset-confirm": lambda w: (
        {},
        {"token": password_reset_token_create(user=w.a), "new_password": "another long passphrase 43"},
        None,
    ),
    "deposit-review": lambda w: (
        {"transaction_id": w.held_deposit.pk},
        {"decision": "approve", "note": "Known customer, verified by phone."},
        w.reviewer,
    ),
    "payments": lambda w: ({}, {"amount": 1_000, "currency": "USD", "payment_method": "tok_visa"}, w.a),
    "payment-capture": lambda w: ({"payment_id": w.to_capture.pk}, {"amount": 500}, w.a),
    "payment-cancel": lambda w: ({"payment_id": w.to_cancel.pk}, {"reason": "duplicate"}, w.a),
    "payment-refunds": lambda w: ({"payment_id": w.captured.pk}, {"amount": 100}, w.a),
    "payment-review": lambda w: (
        {"payment_id": w.in_review.pk},
        {"decision": "approve", "note": "Known customer, verified by phone."},
        w.reviewer,
    ),
    "subscriptions": lambda w: (
        {},
        {
            "plan_id": "plan_pro",
            "amount": 900,
            "currency": "USD",
            "billing_cycle": "monthly",
            "payment_method": "tok_visa",
        },
        w.a,
    ),
    "subscription": lambda w: ({"subscription_id": w.subscription.pk}, {"metadata": {"seat": "2"}}, w.a),
    "webhook-endpoints": lambda w: (
        {},
        {"url": "https://hooks.example.com/paydesk", "enabled_events": ["payment.succeeded"]},
        w.a,
    ),
    "webhook-endpoint": lambda w: ({"endpoint_id": w.endpoint.pk}, {"description": "the shop"}, w.a),
    "webhook-endpoint-rotate-secret": lambda w: ({"endpoint_id": w.endpoint.pk}, {}, w.a),
    "webhook-delivery-retry": lambda w: ({"delivery_id": w.delivery.pk}, {}, w.a),
    "wallet-payouts": lambda w: (
        {"wallet_id": w.wallet.pk},
        {"amount": 1_000, "destination": "btok_success", "description": "rent"},
        w.a,
    ),
    "payout-cancel": lambda w: ({"payout_id": w.payout.pk}, {}, w.a),
}


def _url(route: str, kwargs: dict[str, str]) -> str:
    url = "/" + route
    for name, value in kwargs.items():
        url = url.replace(f"<str:{name}>", value)
    assert "<" not in url, f"{route}: a path parameter has no value"
    return url


def test_the_walk_finds_the_endpoints_that_take_a_body():
    names = {name for _, _, name in ENDPOINTS}
    assert {"payments", "payment-review", "wallet-deposits", "subscription", "auth-login"} <= names
    assert names <= set(VALID), f"give these endpoints a valid body: {sorted(names - set(VALID))}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "route", "name"), ENDPOINTS, ids=[f"{m.upper()} {r}" for m, r, _ in ENDPOINTS]
)
def test_an_unknown_field_is_refused_and_nothing_is_written(method, route, name):
    world = World()
    kwargs, body, sender = VALID[name](world)
    client = world.client(sender) if sender is not None else APIClient()
    url = _url(route, kwargs)
    key = {"HTTP_IDEMPOTENCY_KEY": f"unknown-field-{name}"}
    before = row_counts()

    response = client.generic(
        method.upper(), url, json.dumps({**body, "amout": 100}), content_type="application/json", **key
    )

    assert response.status_code == 400, response.content[:500]
    assert response.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "parameter_unknown",
            "message": "Received unknown parameter: amout",
            "param": "amout",
        }
    }
    assert row_counts() == before  # no payment, ledger entry, audit row, event, nor idempotency key

    # The key was not kept: the corrected request runs (it is not answered with the refusal).
    retried = client.generic(method.upper(), url, json.dumps(body), content_type="application/json", **key)
    assert retried.status_code < 300, retried.content[:500]
    assert "Idempotent-Replayed" not in retried


@pytest.mark.django_db
def test_an_api_key_create_with_a_misspelled_field_creates_no_key(user):
    api_key_create(user=user, name="first", actor=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_session_start(user=user).tokens.access}")

    response = client.post("/api/v1/api-keys", {"nmae": "typo"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "nmae"
    assert user.api_keys.count() == 1
