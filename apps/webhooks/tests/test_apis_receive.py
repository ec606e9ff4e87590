"""Receiving: only correctly signed deliveries are stored, each provider event once, answered at once."""

import hashlib
import hmac
import time

import pytest

from apps.webhooks.models import WebhookEvent
from apps.webhooks.tests.factories import (
    ANET_KEY,
    STRIPE_OLD_SECRET,
    STRIPE_SECRET,
    anet_event,
    anet_signature,
    encode,
    stripe_event,
    stripe_signature,
)

pytestmark = pytest.mark.django_db

UNKNOWN_EVENT = ("customer.created", {"id": "cus_123", "object": "customer"})


def error(response):
    return response.json()["error"]


# --- Stripe ------------------------------------------------------------------------------------


def test_stripe_event_signed_by_the_sdk_is_stored_and_answered_200(deliver):
    event = stripe_event(*UNKNOWN_EVENT)

    response = deliver.stripe(event)

    assert response.status_code == 200
    body = response.json()
    assert body["provider_event_id"] == event["id"]
    assert body["object"] == "webhook_event"
    assert body["duplicate"] is False
    stored = WebhookEvent.objects.get(pk=body["id"])
    assert (stored.provider, stored.type, stored.payload) == ("stripe", "customer.created", event)
    assert stored.provider_created_at.timestamp() == event["created"]


def test_repeat_delivery_is_a_200_no_op(deliver):
    event = stripe_event(*UNKNOWN_EVENT)
    first = deliver.stripe(event).json()

    again = deliver.stripe(event)

    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["duplicate"] is True
    assert WebhookEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        (lambda body: stripe_signature(body + b" "), "webhook_signature_invalid"),  # signed other bytes
        (lambda body: stripe_signature(body, secret="whsec_somebody_else"), "webhook_signature_invalid"),
        (lambda body: stripe_signature(body, timestamp=int(time.time()) - 360), "webhook_signature_expired"),
        (lambda body: stripe_signature(body, timestamp=int(time.time()) + 360), "webhook_signature_expired"),
        (
            lambda body: stripe_signature(body, timestamp=int(time.time()) + 86_400 * 365),
            "webhook_signature_expired",
        ),
        (lambda body: "t=123,v0=abc", "webhook_signature_invalid"),
        (lambda body: "garbage", "webhook_signature_invalid"),
        (lambda body: "", "webhook_signature_missing"),
    ],
    ids=[
        "tampered-body",
        "wrong-secret",
        "stale-timestamp",
        "future-timestamp",
        "far-future-timestamp",
        "no-v1",
        "unparseable",
        "missing",
    ],
)
def test_bad_stripe_signatures_are_400_and_store_nothing(deliver, signature, code):
    body = encode(stripe_event(*UNKNOWN_EVENT))

    response = deliver.stripe(body=body, signature=signature(body))

    assert response.status_code == 400
    assert error(response)["type"] == "invalid_request_error"
    assert error(response)["code"] == code
    assert not WebhookEvent.objects.exists()


def test_tampered_body_under_a_valid_signature_is_refused(deliver):
    event = stripe_event("refund.created", {"id": "re_1", "object": "refund", "amount": 100})
    signature = stripe_signature(encode(event))
    event["data"]["object"]["amount"] = 100_000

    response = deliver.stripe(body=encode(event), signature=signature)

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_signature_within_the_tolerance_is_accepted(deliver):
    body = encode(stripe_event(*UNKNOWN_EVENT))

    response = deliver.stripe(body=body, signature=stripe_signature(body, timestamp=int(time.time()) - 290))

    assert response.status_code == 200


def test_signature_slightly_ahead_of_our_clock_is_accepted(deliver):
    body = encode(stripe_event(*UNKNOWN_EVENT))

    response = deliver.stripe(body=body, signature=stripe_signature(body, timestamp=int(time.time()) + 290))

    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_during_a_secret_rotation_both_secrets_are_accepted(deliver, settings):
    settings.STRIPE_WEBHOOK_SECRETS = [STRIPE_SECRET, STRIPE_OLD_SECRET]
    signed_with_old = encode(stripe_event(*UNKNOWN_EVENT))
    signed_with_new = encode(stripe_event(*UNKNOWN_EVENT))

    old = deliver.stripe(body=signed_with_old, signature=stripe_signature(signed_with_old, STRIPE_OLD_SECRET))
    new = deliver.stripe(body=signed_with_new, signature=stripe_signature(signed_with_new, STRIPE_SECRET))

    assert (old.status_code, new.status_code) == (200, 200)
    assert WebhookEvent.objects.count() == 2


def test_comma_separated_secret_setting_also_rotates(deliver, settings):
    settings.STRIPE_WEBHOOK_SECRET = f"{STRIPE_SECRET}, {STRIPE_OLD_SECRET}"
    body = encode(stripe_event(*UNKNOWN_EVENT))

    response = deliver.stripe(body=body, signature=stripe_signature(body, STRIPE_OLD_SECRET))

    assert response.status_code == 200


def test_header_with_a_v1_per_secret_is_accepted_by_the_one_we_hold(deliver):
    # While Stripe rolls an endpoint's secret it signs with both: t=…,v1=<new>,v1=<old>.
    body = encode(stripe_event(*UNKNOWN_EVENT))
    timestamp = int(time.time())
    unknown = stripe_signature(body, "whsec_rolled_in_by_stripe", timestamp).split(",")[1]
    ours = stripe_signature(body, STRIPE_SECRET, timestamp).split(",")[1]

    response = deliver.stripe(body=body, signature=f"t={timestamp},{unknown},{ours}")

    assert response.status_code == 200


def test_without_a_configured_secret_nothing_is_accepted(deliver, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = deliver.stripe(stripe_event(*UNKNOWN_EVENT))

    assert response.status_code == 503
    assert error(response)["code"] == "webhook_not_configured"
    assert not WebhookEvent.objects.exists()


# --- Authorize.Net -----------------------------------------------------------------------------


def test_authorize_net_event_with_a_valid_hmac_sha512_is_stored(deliver):
    event = anet_event("net.authorize.customer.created", {"entityName": "customerProfile", "id": "394"})

    response = deliver.anet(event)

    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.provider, stored.provider_event_id, stored.type) == (
        "authorize_net",
        event["notificationId"],
        "net.authorize.customer.created",
    )
    assert stored.provider_created_at is not None


def test_authorize_net_signature_hex_is_case_insensitive(deliver):
    body = encode(anet_event("net.authorize.customer.created", {"id": "1"}))

    response = deliver.anet(body=body, signature=anet_signature(body).lower().replace("sha512=", "SHA512="))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        (lambda body: anet_signature(body + b"\n"), "webhook_signature_invalid"),
        (lambda body: anet_signature(body, key=ANET_KEY[::-1]), "webhook_signature_invalid"),
        (lambda body: anet_signature(body).replace("sha512=", "sha256="), "webhook_signature_invalid"),
        (lambda body: anet_signature(body)[:-2], "webhook_signature_invalid"),
        (lambda body: "", "webhook_signature_missing"),
    ],
    ids=["tampered-body", "wrong-key", "wrong-scheme", "truncated", "missing"],
)
def test_bad_authorize_net_signatures_are_400_and_store_nothing(deliver, signature, code):
    body = encode(anet_event("net.authorize.payment.refund.created", {"id": "1", "responseCode": 1}))

    response = deliver.anet(body=body, signature=signature(body))

    assert response.status_code == 400
    assert error(response)["code"] == code
    assert not WebhookEvent.objects.exists()


def test_authorize_net_key_is_used_as_text_not_as_the_bytes_its_hex_spells(deliver):
    body = encode(anet_event("net.authorize.customer.created", {"id": "9"}))
    keyed_with_bytes = hmac.new(bytes.fromhex(ANET_KEY), body, hashlib.sha512).hexdigest()

    assert deliver.anet(body=body, signature=f"sha512={keyed_with_bytes}").status_code == 400
    assert deliver.anet(body=body, signature=anet_signature(body)).status_code == 200


def test_authorize_net_key_rotation_accepts_old_and_new_keys(deliver, settings):
    old_key = "F" * 128
    settings.AUTHORIZENET_SIGNATURE_KEY = f"{ANET_KEY},{old_key}"
    body = encode(anet_event("net.authorize.customer.created", {"id": "1"}))

    assert deliver.anet(body=body, signature=anet_signature(body, key=old_key)).status_code == 200


# --- bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json at all", "invalid_json"),
        (b'["an", "array"]', "invalid_json"),
        (b'{"amount": NaN, "id": "evt_1", "type": "x"}', "invalid_json"),
        (b'{"type": "charge.refunded"}', "webhook_payload_invalid"),
        (b'{"id": "", "type": "charge.refunded"}', "webhook_payload_invalid"),
        (b'{"id": "evt_1", "type": 7}', "webhook_payload_invalid"),
    ],
    ids=["text", "array", "nan", "no-id", "empty-id", "type-not-text"],
)
def test_signed_bodies_that_are_not_events_are_a_clear_400(deliver, body, code):
    response = deliver.stripe(body=body)

    assert response.status_code == 400
    assert error(response)["code"] == code
    assert not WebhookEvent.objects.exists()


def test_json_the_database_cannot_store_is_a_400_not_a_crash(deliver):
    event = stripe_event("customer.created", {"id": "cus_1", "name": "nul\u0000byte"})

    response = deliver.stripe(event)

    assert response.status_code == 400
    assert error(response)["code"] == "webhook_payload_invalid"
    assert not WebhookEvent.objects.exists()


def test_body_that_is_not_utf8_is_refused_before_parsing(deliver):
    body = b'{"id": "evt_1", "type": "x", "name": "\xff\xfe"}'

    response = deliver.stripe(body=body, signature=f"t={int(time.time())},v1={'0' * 64}")

    assert response.status_code == 400
    assert error(response)["code"] == "webhook_signature_invalid"


def test_body_over_the_limit_is_413(deliver, settings):
    settings.MAX_WEBHOOK_BODY_BYTES = 2_000
    event = stripe_event(*UNKNOWN_EVENT)
    event["data"]["object"]["description"] = "x" * 3_000

    response = deliver.stripe(event)

    assert response.status_code == 413
    assert error(response)["code"] == "request_too_large"
    assert not WebhookEvent.objects.exists()


def test_only_post_is_allowed(deliver):
    response = deliver.client.get("/api/v1/webhooks/stripe")

    assert response.status_code == 405
    assert error(response)["code"] == "method_not_allowed"
