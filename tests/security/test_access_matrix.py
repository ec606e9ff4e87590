"""Who may call what: every endpoint of the OpenAPI schema × every kind of caller, from ONE table.

Each path's `{id}` names an object of customer A. B is another customer: A's objects are a 404 to
B, never a 403 and never their data. The merchant key is an API key of A (server-to-server); the
revoked key was A's. The reviewer and admin are staff with those roles. Bodies are valid, so a
status says what access allowed, not what validation refused. A test proves the table covers
every operation of the schema, so a new endpoint can't slip in without a row.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.accounts.models import Roles
from apps.accounts.services import (
    api_key_create,
    api_key_revoke,
    auth_session_start,
    password_reset_token_create,
)
from apps.accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from apps.core.models import OutboxEvent
from apps.events.tests.factories import webhook_endpoint_and_delivery
from apps.notifications.models import Notification
from apps.payments.services import payment_create
from apps.payouts.services import payout_create
from apps.subscriptions.services import subscription_create
from apps.wallets.services import wallet_create, wallet_deposit

CALLERS = ("anonymous", "customer_a", "customer_b", "merchant_key", "revoked_key", "reviewer", "admin")

# method, path, body                                         anon  A    B    key  rvkd  rev  admin
TABLE: list[tuple[str, str, str | None, tuple[int, ...]]] = [
    ("GET", "/api/v1/health", None,                          (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/api/v1/health/live", None,                     (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/api/v1/health/ready", None,                    (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/api/v1/metrics", None,                         (200, 200, 200, 200, 200, 200, 200)),
    ("GET", "/api/v1/ping", None,                            (401, 200, 200, 200, 401, 200, 200)),
    ("POST", "/api/v1/auth/register", "register",            (201, 201, 201, 201, 201, 201, 201)),
    ("POST", "/api/v1/auth/login", "login",                  (200, 200, 200, 200, 200, 200, 200)),
    ("POST", "/api/v1/auth/refresh", "refresh",              (200, 200, 200, 200, 200, 200, 200)),
    ("POST", "/api/v1/auth/logout", "refresh",               (204, 204, 204, 204, 204, 204, 204)),
    ("GET", "/api/v1/auth/me", None,                         (401, 200, 200, 200, 401, 200, 200)),
    ("POST", "/api/v1/auth/password", "password",            (401, 204, 204, 403, 401, 204, 204)),
    ("POST", "/api/v1/auth/password-reset", "reset",         (202, 202, 202, 202, 202, 202, 202)),
    ("POST", "/api/v1/auth/password-reset/confirm", "reset_confirm", (204, 204, 204, 204, 204, 204, 204)),
    ("GET", "/api/v1/api-keys", None,                        (401, 200, 200, 403, 401, 200, 200)),
    ("POST", "/api/v1/api-keys", "api_key",                  (401, 201, 201, 403, 401, 201, 201)),
    ("DELETE", "/api/v1/api-keys/{api_key}", None,           (401, 204, 404, 403, 401, 404, 404)),
    ("GET", "/api/v1/wallets", None,                         (401, 200, 200, 200, 401, 200, 200)),
    ("POST", "/api/v1/wallets", "wallet",                    (401, 201, 201, 201, 401, 201, 201)),
    ("GET", "/api/v1/wallets/{wallet}", None,                (401, 200, 404, 200, 401, 404, 404)),
    ("POST", "/api/v1/wallets/{wallet}/deposits", "deposit", (401, 201, 404, 201, 401, 404, 404)),
    ("GET", "/api/v1/wallets/{wallet}/transactions", None,   (401, 200, 404, 200, 401, 404, 404)),
    ("POST", "/api/v1/transfers", "transfer",                (401, 201, 404, 201, 401, 404, 404)),
    ("POST", "/api/v1/transfers/batch", "batch",             (401, 201, 404, 201, 401, 404, 404)),
    ("GET", "/api/v1/wallets/{wallet}/payouts", None,        (401, 200, 404, 200, 401, 404, 404)),
    ("POST", "/api/v1/wallets/{wallet}/payouts", "payout",   (401, 201, 404, 201, 401, 404, 404)),
    ("GET", "/api/v1/payouts/{payout}", None,                (401, 200, 404, 200, 401, 404, 404)),
    ("POST", "/api/v1/payouts/{payout}/cancel", "empty",     (401, 200, 404, 200, 401, 404, 404)),
    ("GET", "/api/v1/payments", None,                        (401, 200, 200, 200, 401, 200, 200)),
    ("POST", "/api/v1/payments", "payment",                  (401, 201, 201, 201, 401, 201, 201)),
    ("GET", "/api/v1/payments/{payment}", None,              (401, 200, 404, 200, 401, 200, 200)),
    ("POST", "/api/v1/payments/{payment}/capture", "empty",  (401, 200, 404, 200, 401, 404, 404)),
    ("POST", "/api/v1/payments/{payment}/cancel", "empty",   (401, 200, 404, 200, 401, 404, 404)),
    ("POST", "/api/v1/payments/{captured}/refunds", "empty", (401, 201, 404, 201, 401, 404, 404)),
    # a non-reviewer is refused before any lookup: the same 403 whoever's payment the id names
    ("PUT", "/api/v1/payments/{in_review}/review", "review", (401, 403, 403, 403, 401, 200, 200)),
    ("PUT", "/api/v1/transactions/{held_deposit}/review", "review", (401, 403, 403, 403, 401, 200, 200)),
    ("GET", "/api/v1/subscriptions", None,                   (401, 200, 200, 200, 401, 200, 200)),
    ("POST", "/api/v1/subscriptions", "subscription",        (401, 201, 201, 201, 401, 201, 201)),
    ("GET", "/api/v1/subscriptions/{subscription}", None,    (401, 200, 404, 200, 401, 404, 404)),
    ("PATCH", "/api/v1/subscriptions/{subscription}", "patch", (401, 200, 404, 200, 401, 404, 404)),
    ("DELETE", "/api/v1/subscriptions/{subscription}", None, (401, 200, 404, 200, 401, 404, 404)),
    ("GET", "/api/v1/notifications", None,                   (401, 200, 200, 200, 401, 200, 200)),
    ("GET", "/api/v1/notifications/{notification}", None,   (401, 200, 404, 200, 401, 404, 404)),
    ("GET", "/api/v1/events", None,                          (401, 200, 200, 200, 401, 200, 200)),
    ("GET", "/api/v1/events/{event}", None,                  (401, 200, 404, 200, 401, 404, 404)),
    ("GET", "/api/v1/webhook-endpoints", None,               (401, 200, 200, 200, 401, 200, 200)),
    ("POST", "/api/v1/webhook-endpoints", "endpoint",        (401, 201, 201, 201, 401, 201, 201)),
    ("GET", "/api/v1/webhook-endpoints/{endpoint}", None,    (401, 200, 404, 200, 401, 404, 404)),
    ("PATCH", "/api/v1/webhook-endpoints/{endpoint}", "endpoint_patch", (401, 200, 404, 200, 401, 404, 404)),
    ("DELETE", "/api/v1/webhook-endpoints/{endpoint}", None, (401, 204, 404, 204, 401, 404, 404)),
    ("POST", "/api/v1/webhook-endpoints/{endpoint}/rotate-secret", "empty", (401, 200, 404, 200, 401, 404, 404)),
    ("GET", "/api/v1/webhook-endpoints/{endpoint}/deliveries", None, (401, 200, 404, 200, 401, 404, 404)),
    ("GET", "/api/v1/webhook-deliveries/{delivery}", None,   (401, 200, 404, 200, 401, 404, 404)),
    ("POST", "/api/v1/webhook-deliveries/{delivery}/retry", "empty", (401, 202, 404, 202, 401, 404, 404)),
    ("POST", "/api/v1/webhooks/stripe", "empty",             (400, 400, 400, 400, 400, 400, 400)),
    ("POST", "/api/v1/webhooks/authorize-net", "empty",      (400, 400, 400, 400, 400, 400, 400)),
]  # fmt: skip

CASES = [
    pytest.param(method, path, body, caller, expected, id=f"{method} {path} as {caller}")
    for method, path, body, statuses in TABLE
    for caller, expected in zip(CALLERS, statuses, strict=True)
]


class World:
    """A's objects (each kind an endpoint can name), B, the staff, and a client per caller."""

    def __init__(self) -> None:
        self.a = UserFactory()
        self.b = UserFactory()
        self.reviewer = UserFactory(is_staff=True, roles=[Roles.REVIEWER])
        self.admin = UserFactory(is_staff=True, is_superuser=True, roles=[Roles.ADMIN])
        self.wallet = wallet_create(actor=self.a, user=self.a, currency="USD")
        wallet_deposit(
            actor=self.a, user=self.a, wallet_id=self.wallet.pk, amount=50_000, payment_method="tok_visa"
        )
        self.held_deposit = wallet_deposit(  # at DEPOSIT_REVIEW_AMOUNT_THRESHOLD: held in review
            actor=self.a, user=self.a, wallet_id=self.wallet.pk, amount=1_000_000, payment_method="tok_visa"
        )
        self.b_wallet = wallet_create(actor=self.b, user=self.b, currency="USD")
        self.payout = payout_create(  # pending: its worker runs on commit, which never comes here
            actor=self.a, user=self.a, wallet_id=self.wallet.pk, amount=1_000, destination="btok_success"
        )
        self.payment = payment_create(
            actor=self.a,
            owner=self.a,
            amount=1_000,
            currency="USD",
            payment_method="tok_visa",
            capture_method="manual",
        )
        self.captured = payment_create(
            actor=self.a, owner=self.a, amount=1_000, currency="USD", payment_method="tok_visa"
        )
        self.in_review = payment_create(
            actor=self.a, owner=self.a, amount=1_000, currency="USD", payment_method="tok_riskLevelElevated"
        )
        self.subscription = subscription_create(
            actor=self.a,
            owner=self.a,
            plan_id="plan_basic",
            amount=500,
            currency="USD",
            billing_cycle="monthly",
            payment_method="tok_visa",
        )
        # the deposit's email, as the notifications consumer records it (on_commit never runs here)
        self.notification = Notification.objects.create(
            user=self.a,
            event=OutboxEvent.objects.filter(event_type="deposit.completed").first()
            or OutboxEvent.objects.first(),
            template=Notification.Template.DEPOSIT_COMPLETED,
            to=self.a.email,
            subject="Deposit of 500.00 USD completed",
        )
        self.endpoint, self.delivery = webhook_endpoint_and_delivery(self.a)
        self.api_key, self.key_secret = api_key_create(user=self.a, name="merchant", actor=self.a)
        revoked, self.revoked_secret = api_key_create(user=self.a, name="old", actor=self.a)
        api_key_revoke(api_key=revoked, actor=self.a)

    def ids(self) -> dict[str, str]:
        return {
            "wallet": self.wallet.pk,
            "payment": self.payment.pk,
            "captured": self.captured.pk,
            "in_review": self.in_review.pk,
            "held_deposit": self.held_deposit.pk,
            "payout": self.payout.pk,
            "subscription": self.subscription.pk,
            "notification": self.notification.pk,
            "api_key": self.api_key.pk,
            "event": self.delivery.event_id,
            "endpoint": self.endpoint.pk,
            "delivery": self.delivery.pk,
        }

    def client(self, caller: str) -> APIClient:
        client = APIClient()
        bearer = {"customer_a": self.a, "customer_b": self.b, "reviewer": self.reviewer, "admin": self.admin}
        if caller in bearer:
            access = auth_session_start(user=bearer[caller]).tokens.access
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        elif caller == "merchant_key":
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {self.key_secret}")
        elif caller == "revoked_key":
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {self.revoked_secret}")
        return client

    def body(self, name: str | None) -> dict | None:
        if name is None:
            return None
        return {
            "register": lambda: {
                "email": "new.customer@example.com",
                "password": "a long enough passphrase 42",
            },
            "login": lambda: {"email": self.a.email, "password": DEFAULT_PASSWORD},
            "password": lambda: {
                "current_password": DEFAULT_PASSWORD,
                "new_password": "a brand new passphrase 42",
            },
            "reset": lambda: {"email": self.a.email},
            "reset_confirm": lambda: {
                "token": password_reset_token_create(user=self.a),
                "new_password": "a brand new passphrase 42",
            },
            "refresh": lambda: {"refresh": auth_session_start(user=self.a).tokens.refresh},
            "api_key": lambda: {"name": "another"},
            "wallet": lambda: {"currency": "EUR"},
            "deposit": lambda: {"amount": 1_000, "payment_method": "tok_visa"},
            "payout": lambda: {"amount": 1_000, "destination": "btok_success"},
            "transfer": lambda: {
                "source_wallet": self.wallet.pk,
                "destination_wallet": self.b_wallet.pk,
                "amount": 1_000,
            },
            "batch": lambda: {
                "transfers": [
                    {"source_wallet": self.wallet.pk, "destination_wallet": self.b_wallet.pk, "amount": 400},
                    {"source_wallet": self.wallet.pk, "destination_wallet": self.b_wallet.pk, "amount": 600},
                ]
            },
            "payment": lambda: {"amount": 1_000, "currency": "USD", "payment_method": "tok_visa"},
            "review": lambda: {"decision": "approve", "note": "Known customer, verified by phone."},
            "subscription": lambda: {
                "plan_id": "plan_pro",
                "amount": 900,
                "currency": "USD",
                "billing_cycle": "monthly",
                "payment_method": "tok_visa",
            },
            "patch": lambda: {"metadata": {"seat": "2"}},
            "endpoint": lambda: {"url": "https://hooks.example.com/paydesk", "enabled_events": ["*"]},
            "endpoint_patch": lambda: {"description": "the shop's server"},
            "empty": lambda: {},
        }[name]()


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body", "caller", "expected"), CASES)
def test_access(method, path, body, caller, expected):
    world = World()
    url = path.format(**world.ids())
    payload = world.body(body)
    response = world.client(caller).generic(
        method,
        url,
        data="" if payload is None else json.dumps(payload),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,  # a fresh key: what a careful client sends (batch needs one)
    )
    assert response.status_code == expected, response.content[:500]
    if expected >= 400:
        assert set(response.json()["error"]) >= {"type", "code", "message"}
    if expected == 404:  # nothing of A's leaks: neither who owns it nor what it holds
        assert world.a.email not in response.content.decode()
        assert set(response.json()) == {"error"}


def test_the_table_covers_every_operation_of_the_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    in_schema = {
        (method.upper(), _shape(path))
        for path, operations in schema["paths"].items()
        for method in operations
    }
    in_table = {(method, _shape(path)) for method, path, _, _ in TABLE}
    assert in_schema == in_table


def _shape(path: str) -> str:
    """`/payments/{payment_id}/capture` and `/payments/{payment}/capture` are the same operation."""
    return re.sub(r"\{[^}]+\}", "{}", path)
