"""The audit actor of the payments API is the request's principal, as in every API."""

import pytest

pytestmark = pytest.mark.django_db


def create(client, **body):
    payload = {"amount": 2500, "currency": "usd", "payment_method": "tok_visa", **body}
    return client.post("/api/v1/payments", payload, format="json")


def test_an_api_key_payment_is_audited_as_the_key(api_key_client, user):
    """One rule for every API: the audit actor is the principal (the key), not the key's user."""
    from apps.accounts.models import ApiKey
    from apps.audit.models import AuditLog

    payment = create(api_key_client, capture_method="manual").json()
    assert (
        api_key_client.post(f"/api/v1/payments/{payment['id']}/capture", {}, format="json").status_code == 200
    )
    refund = api_key_client.post(f"/api/v1/payments/{payment['id']}/refunds", {}, format="json").json()
    key = ApiKey.objects.get(user=user)
    rows = AuditLog.objects.filter(entity_id__in=[payment["id"], refund["id"]])
    assert rows.count() >= 4  # create, authorize, capture, refund…
    assert set(rows.values_list("actor_type", "actor_id")) == {("api_key", key.pk)}
