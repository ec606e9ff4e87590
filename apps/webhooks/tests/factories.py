"""Provider events for tests, signed the way each provider signs them.

Stripe deliveries are signed with the official SDK's own helper
(`stripe.WebhookSignature.generate_signature_header`); Authorize.Net's with a plain HMAC-SHA512
written here, independently of the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import stripe

from apps.webhooks.models import WebhookEvent

STRIPE_SECRET = "whsec_paydesk_test_current_0123456789"
STRIPE_OLD_SECRET = "whsec_paydesk_test_previous_9876543210"
# Authorize.Net Signature Keys are 128 hex digits; the HMAC is keyed with that text, not its bytes.
ANET_KEY = "A1B2C3D4E5F60718293A4B5C6D7E8F90" * 4


def stripe_event(event_type: str, obj: dict[str, Any], *, created: int | None = None, **extra: Any) -> dict:
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": {"object": obj},
        **extra,
    }


def stripe_signature(body: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)


def anet_event(event_type: str, payload: dict[str, Any], *, event_date: datetime | None = None) -> dict:
    return {
        "notificationId": secrets.token_hex(16),
        "eventType": event_type,
        "eventDate": (event_date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
        "webhookId": "63d6fea2-aa13-4b1d-a204-f5fbc15942b7",
        "payload": {"entityName": "transaction", **payload},
    }


def anet_signature(body: bytes, key: str = ANET_KEY) -> str:
    return "sha512=" + hmac.new(key.encode("ascii"), body, hashlib.sha512).hexdigest().upper()


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def received(response) -> WebhookEvent:
    """The stored event a delivery was answered with (asserting the 200)."""
    assert response.status_code == 200, response.content
    return WebhookEvent.objects.get(pk=response.json()["id"])
