"""Payment tokens and receipt emails re-encrypt to the newest key with rotate_encryption_key."""

import base64
import os

import pytest
from django.core.management import call_command
from django.db import connection

from apps.payments.models import Payment

pytestmark = pytest.mark.django_db


def _key(kid: str) -> str:
    return f"{kid}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


def _raw(payment_id: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT payment_method_token, receipt_email FROM payments_payment WHERE id = %s", [payment_id]
        )
        return cursor.fetchone()


def test_rotation_moves_payment_secrets_to_the_new_key(auth_client, settings):
    old, new = _key("k1"), _key("k2")
    settings.FIELD_ENCRYPTION_KEYS = [old]
    payment_id = auth_client.post(
        "/api/v1/payments",
        {"amount": 100, "currency": "USD", "payment_method": "tok_visa", "receipt_email": "ada@example.com"},
        format="json",
    ).json()["id"]
    assert all(value.startswith("v2.k1.") for value in _raw(payment_id))

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_key", "--dry-run")
    assert all(value.startswith("v2.k1.") for value in _raw(payment_id))

    call_command("rotate_encryption_key")
    assert all(value.startswith("v2.k2.") for value in _raw(payment_id))
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key can go
    payment = Payment.objects.get(pk=payment_id)
    assert payment.payment_method_token == "tok_visa"
    assert payment.receipt_email == "ada@example.com"
