"""The payment and refund objects are declared once: the fast path writes what DRF would."""

import pytest
from rest_framework import serializers

from apps.payments.models import Payment, Refund
from apps.payments.serializers import PaymentOutputSerializer, RefundOutputSerializer

pytestmark = pytest.mark.django_db


def drf_representation(serializer_class, instance):
    """What DRF's own `Serializer.to_representation` makes of the declared fields."""
    return serializers.Serializer.to_representation(serializer_class(), instance)


def test_fast_output_equals_drf_serialization_of_the_declared_fields(
    auth_client, reviewer_client, funded_wallet
):
    created = []

    def create(**body):
        payload = {"amount": 2500, "currency": "USD", "payment_method": "tok_visa", **body}
        response = auth_client.post("/api/v1/payments", payload, format="json")
        assert response.status_code == 201, response.json()
        created.append(response.json())
        return response.json()

    card = create(description="d", metadata={"k": "v"})
    create(payment_method="tok_chargeDeclined")
    held = create(payment_method="tok_riskLevelElevated")
    reviewer_client.put(
        f"/api/v1/payments/{held['id']}/review", {"decision": "deny", "note": "no"}, format="json"
    )
    create(payment_method="tok_riskLevelElevated")  # an open review
    create(payment_method=f"wallet:{funded_wallet(5000).pk}")
    Payment.objects.filter(pk=card["id"]).update(dispute_reference="dp_1", dispute_reason="fraudulent")
    auth_client.post(f"/api/v1/payments/{card['id']}/refunds", {"amount": 100}, format="json")

    payments = Payment.objects.select_related("review", "review__decided_by")
    assert payments.count() == len(created) == 5
    for payment in payments:
        assert PaymentOutputSerializer.represent(payment) == drf_representation(
            PaymentOutputSerializer, payment
        )
    refund = Refund.objects.select_related("payment").get()
    assert RefundOutputSerializer.represent(refund) == drf_representation(RefundOutputSerializer, refund)
    assert RefundOutputSerializer.represent(refund)["created_at"].endswith("Z")
