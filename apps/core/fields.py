"""DRF fields for API.md's typing rules. Money delegates to `apps.core.money`, the one definition.

JSON has types and the API keeps them: a string field refuses 10 and an integer field refuses "10"
(DRF would coerce both), so a client learns of a type mix-up at once, not from a stored "10".
"""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.money import (
    CURRENCY_EXPONENTS,
    MAX_AMOUNT,
    MIN_AMOUNT,
    MoneyValueError,
    parse_amount,
    parse_currency,
)

# The supported ISO 4217 codes, as the schema lists them (upper-case; any case is accepted).
CURRENCY_CODES = sorted(CURRENCY_EXPONENTS)
CURRENCY_DESCRIPTION = "A supported ISO 4217 code, sent in any case (`usd` is `USD`); returned upper-case."


@extend_schema_field({"type": "integer", "minimum": MIN_AMOUNT, "maximum": MAX_AMOUNT})
class AmountField(serializers.Field):
    """An integer >= 1 and <= 99,999,999,999 in minor units; 10.5, "10", 1e30, true are refused."""

    def to_internal_value(self, data):
        try:
            return parse_amount(data, name=self.field_name or "amount")
        except MoneyValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from exc

    def to_representation(self, value):
        return int(value)


@extend_schema_field(
    {
        "type": "string",
        "enum": CURRENCY_CODES,
        "example": "USD",
        "description": CURRENCY_DESCRIPTION,
    }
)
class CurrencyField(serializers.Field):
    """A 3-letter ISO 4217 code in any case, returned upper-case."""

    def to_internal_value(self, data):
        try:
            return parse_currency(data, name=self.field_name or "currency")
        except MoneyValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from exc

    def to_representation(self, value):
        return value


class TextField(serializers.CharField):
    """A JSON string; numbers are refused instead of being coerced to text.

    `max_length` counts what was sent, before whitespace is trimmed: the limit a client reads in
    the schema is the one applied.
    """

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class IntegerField(serializers.IntegerField):
    """A JSON integer; "10", 10.0 and true are refused instead of being coerced."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class BooleanField(serializers.BooleanField):
    """A JSON true or false; 0, 1, "true" and "yes" are refused instead of being coerced."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def _metadata(value: dict[str, Any]) -> None:
    if len(value) > METADATA_MAX_KEYS:
        raise serializers.ValidationError(f"metadata holds at most {METADATA_MAX_KEYS} keys")
    for key, item in value.items():
        if (
            len(key) > METADATA_MAX_KEY_LENGTH
            or not isinstance(item, (str, int, bool))
            or len(str(item)) > METADATA_MAX_VALUE_LENGTH
        ):
            raise serializers.ValidationError(
                f"metadata keys are at most {METADATA_MAX_KEY_LENGTH} characters and values strings "
                f"of at most {METADATA_MAX_VALUE_LENGTH}"
            )


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": METADATA_MAX_KEYS,
        # OpenAPI 3.0 has no `propertyNames`: the key limit can only be said in words.
        "description": f"Keys of at most {METADATA_MAX_KEY_LENGTH} characters.",
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": METADATA_MAX_VALUE_LENGTH},
                {"type": "integer"},
                {"type": "boolean"},
            ]
        },
    }
)
class MetadataField(serializers.DictField):
    """Your own key-value pairs, stored and returned as given (card data refused like anywhere else)."""

    def __init__(self, **kwargs):
        super().__init__(validators=[_metadata], **kwargs)
