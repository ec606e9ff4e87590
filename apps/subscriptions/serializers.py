"""The subscription object of API.md, declared once: what the subscriptions API returns and what
the events API (apps.events) carries in an event's `data.object`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import ConstantField, OptionalTextField, OutputSerializer, TimestampField
from apps.subscriptions.models import Subscription

PAYMENT_METHOD_HELP = "A gateway token (tok_…, pm_…) or `wallet:<wallet id>` of your own wallet."


class PendingUpdateSerializer(serializers.Serializer):
    amount = serializers.IntegerField(required=False)
    billing_cycle = serializers.ChoiceField(choices=Subscription.Cycle.choices, required=False)
    plan_id = serializers.CharField(required=False)
    payment_method = serializers.CharField(required=False)


@extend_schema_field(PendingUpdateSerializer(allow_null=True))
class PendingUpdateField(serializers.Field):
    """The changes waiting for the next period: only the keys that are set; null when none is."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, subscription: Subscription) -> dict[str, Any] | None:
        pending: dict[str, Any] = {}
        if subscription.pending_amount is not None:
            pending["amount"] = subscription.pending_amount
        if subscription.pending_billing_cycle:
            pending["billing_cycle"] = subscription.pending_billing_cycle
        if subscription.pending_plan_id:
            pending["plan_id"] = subscription.pending_plan_id
        if subscription.pending_payment_method:
            pending["payment_method"] = subscription.pending_payment_method
        return pending or None


class SubscriptionOutputSerializer(OutputSerializer):
    """The subscription object."""

    id = serializers.CharField(source="pk")
    object = ConstantField("subscription")
    plan_id = serializers.CharField()
    amount = serializers.IntegerField(help_text="Minor units of the currency, charged every cycle.")
    currency = serializers.CharField()
    billing_cycle = serializers.ChoiceField(choices=Subscription.Cycle.choices)
    status = serializers.ChoiceField(choices=Subscription.Status.choices)
    payment_method = serializers.CharField(help_text=PAYMENT_METHOD_HELP)
    current_period_start = TimestampField(
        allow_null=True, help_text="Start of the last paid period (or of the trial)."
    )
    current_period_end = TimestampField(allow_null=True)
    next_billing_date = TimestampField(
        allow_null=True,
        help_text="When the next charge (or dunning retry) is made; null when ending, canceled or unpaid.",
    )
    trial_end_date = TimestampField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    canceled_at = TimestampField(allow_null=True)
    metadata = serializers.DictField()
    pending_update = PendingUpdateField(help_text="Changes that take effect when the next period is charged.")
    latest_payment = OptionalTextField(
        source="latest_payment_id", help_text="The last charge attempt's payment."
    )
    created_at = TimestampField()


def subscription_representation(subscription: Subscription) -> dict[str, Any]:
    """The subscription object of API.md (declared once, by `SubscriptionOutputSerializer`)."""
    return SubscriptionOutputSerializer.represent(subscription)
