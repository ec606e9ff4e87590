"""The payment and refund objects of API.md, and the payment fields other apps' APIs share.

Each response shape is declared once, here: the serializers' fields are both what the API returns
and what the OpenAPI schema documents. Lists serialize thousands of payments, so `OutputSerializer`
writes an object from its declared fields without DRF's per-field machinery (a page of 100 payments:
~2 ms, against ~8 ms through DRF's own `to_representation`); the declaration stays the one source.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import TextField
from apps.core.timestamps import iso_z
from apps.payments import services
from apps.payments.models import Payment, Refund


# `services.parse_payment_method` is the check (400 `payment_method_invalid`); this shows its shape.
@extend_schema_field(
    {
        "type": "string",
        "pattern": "|".join(regex.pattern for regex in (services.TOKEN_PATTERN, services.WALLET_PATTERN)),
        "example": "tok_visa",
    }
)
class PaymentMethodField(TextField):
    """A gateway token (`tok_…`, `pm_…`) or `wallet:<wallet id>`."""


class OptionalTextField(serializers.CharField):
    """For output: a text column stored blank appears as null."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_representation(self, value: str) -> str | None:
        return value or None


class TimestampField(serializers.DateTimeField):
    """For output: an instant as `iso_z` writes it (UTC, with a "Z")."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str | None:
        return iso_z(value)


class ConstantField(serializers.CharField):
    """For output: the object's type name (`"payment"`, `"refund"`)."""

    def __init__(self, value: str, **kwargs: Any) -> None:
        self.value = value
        super().__init__(source="*", **kwargs)

    def to_representation(self, instance: Any) -> str:
        return self.value


# Fields whose DRF output is the model's value itself (an int column, a text column, JSON).
_AS_STORED = (
    serializers.IntegerField,
    serializers.CharField,
    serializers.ChoiceField,
    serializers.DictField,
    serializers.ListField,
)
_Writer = Callable[[Any], Any]


def _as_stored(value: Any) -> Any:
    return value


def _or_none(write: _Writer) -> _Writer:
    """As DRF does: a missing value is null, without asking the field."""
    return lambda value: None if value is None else write(value)


class OutputSerializer(serializers.Serializer):
    # An output-only serializer whose declared fields are written straight from the instance: each
    # field's value is read from its `source` and passed through the field's own
    # `to_representation` unless that returns the stored value as it is. The result equals DRF's
    # own serialization, without its per-field machinery.
    # (A comment, not a docstring: the schema would show it as every subclass's description.)

    _plan: ClassVar[list[tuple[str, _Writer, _Writer]]]

    @classmethod
    def _writers(cls) -> list[tuple[str, _Writer, _Writer]]:
        if "_plan" not in cls.__dict__:
            plan = []
            for name, field in cls().fields.items():
                read: _Writer = _as_stored if field.source == "*" else attrgetter(field.source)
                write = _as_stored if type(field) in _AS_STORED else _or_none(field.to_representation)
                plan.append((name, read, write))
            cls._plan = plan
        return cls._plan

    @classmethod
    def represent(cls, instance: Any) -> dict[str, Any]:
        """The object as the API returns it (without building a serializer)."""
        return {name: write(read(instance)) for name, read, write in cls._writers()}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return self.represent(instance)


class ReviewSerializer(OutputSerializer):
    status = serializers.ChoiceField(choices=["open", "approved", "denied"])
    reasons = serializers.ListField(child=serializers.CharField())
    decided_by = serializers.CharField(source="decided_by_id", allow_null=True)
    decided_at = TimestampField(allow_null=True)
    note = OptionalTextField()


class DisputeSerializer(OutputSerializer):
    reference = serializers.CharField(source="dispute_reference")
    reason = serializers.CharField(source="dispute_reason")


class PaymentMethodDetailsSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=Payment.MethodType.choices)
    brand = serializers.CharField(required=False)
    last4 = serializers.CharField(required=False)
    wallet = serializers.CharField(required=False)


@extend_schema_field(PaymentMethodDetailsSerializer)
class PaymentMethodDetailsField(serializers.Field):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, payment: Payment) -> dict[str, Any]:
        details: dict[str, Any] = {"type": payment.method_type}
        if payment.method_type == Payment.MethodType.WALLET:
            details["wallet"] = payment.wallet_id
        elif payment.card_brand:
            details["brand"], details["last4"] = payment.card_brand, payment.card_last4
        return details


@extend_schema_field(ReviewSerializer(allow_null=True))
class ReviewField(serializers.Field):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, payment: Payment) -> dict[str, Any] | None:
        # Only a payment with risk reasons can have a review: the others are spared the lookup.
        if payment.risk_reasons and hasattr(payment, "review"):
            return ReviewSerializer.represent(payment.review)
        return None


@extend_schema_field(DisputeSerializer(allow_null=True))
class DisputeField(serializers.Field):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, payment: Payment) -> dict[str, Any] | None:
        return DisputeSerializer.represent(payment) if payment.dispute_reference else None


class PaymentOutputSerializer(OutputSerializer):
    """The payment object."""

    id = serializers.CharField(source="pk")
    object = ConstantField("payment")
    amount = serializers.IntegerField()
    amount_captured = serializers.IntegerField()
    amount_refunded = serializers.IntegerField()
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    capture_method = serializers.ChoiceField(choices=Payment.CaptureMethod.choices)
    payment_method_details = PaymentMethodDetailsField()
    gateway_reference = OptionalTextField()
    description = OptionalTextField()
    customer_id = OptionalTextField()
    metadata = serializers.DictField()
    failure_code = OptionalTextField()
    failure_message = OptionalTextField()
    review = ReviewField()
    dispute = DisputeField()
    subscription = OptionalTextField(source="subscription_id")
    created_at = TimestampField()
    updated_at = TimestampField()


class RefundOutputSerializer(OutputSerializer):
    id = serializers.CharField(source="pk")
    object = ConstantField("refund")
    payment = serializers.CharField(source="payment_id")
    amount = serializers.IntegerField()
    currency = serializers.CharField(source="payment.currency")
    status = serializers.ChoiceField(choices=Refund.Status.choices)
    reason = OptionalTextField()
    failure_code = OptionalTextField()
    created_at = TimestampField()
