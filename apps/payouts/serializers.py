"""The payout object of API.md, declared once: what the payouts API returns and what the events API
(apps.events) carries in an event's `data.object`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import ConstantField, OptionalTextField, OutputSerializer, TimestampField
from apps.core.timestamps import iso_z
from apps.payouts.models import Payout


class DestinationSerializer(serializers.Serializer):
    type = serializers.CharField(help_text='"bank_account"')
    last4 = serializers.CharField(required=False, help_text="The account number's last four digits.")


@extend_schema_field(DestinationSerializer)
class DestinationField(serializers.Field):
    """`{type, last4?}`: what may be shown of the destination (never its token)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, payout: Payout) -> dict[str, Any]:
        shown: dict[str, Any] = {"type": payout.destination_type}
        if payout.destination_last4:
            shown["last4"] = payout.destination_last4
        return shown


class PayoutReviewSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["open", "approved", "denied", "withdrawn"])
    reasons = serializers.ListField(child=serializers.CharField())
    decided_at = TimestampField(allow_null=True)


@extend_schema_field(PayoutReviewSerializer(allow_null=True))
class PayoutReviewField(serializers.Field):
    """null, or the review a risk rule held the payout for: `{status, reasons, decided_at}`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, payout: Payout) -> dict[str, Any] | None:
        if not payout.review_status:
            return None
        return {
            "status": payout.review_status,
            "reasons": list(payout.review_reasons or []),
            "decided_at": iso_z(payout.review_decided_at),
        }


class PayoutOutputSerializer(OutputSerializer):
    id = serializers.CharField(source="pk")
    object = ConstantField("payout")
    wallet = serializers.CharField(source="wallet_id")
    amount = serializers.IntegerField(help_text="Minor units of the currency.")
    currency = serializers.CharField()
    destination = DestinationField()
    status = serializers.ChoiceField(choices=Payout.Status.choices)
    failure_code = OptionalTextField()
    failure_message = OptionalTextField()
    description = OptionalTextField()
    review = PayoutReviewField()
    created_at = TimestampField()
    updated_at = TimestampField()
