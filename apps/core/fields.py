"""DRF fields for API.md's money rules. They delegate to `apps.core.money`, the one definition."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.money import MoneyValueError, parse_amount, parse_currency


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 99_999_999_999})
class AmountField(serializers.Field):
    """An integer >= 1 and <= 99,999,999,999 in minor units; 10.5, "10", 1e30, true are refused."""

    def to_internal_value(self, data):
        try:
            return parse_amount(data, name=self.field_name or "amount")
        except MoneyValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from exc

    def to_representation(self, value):
        return int(value)


@extend_schema_field({"type": "string", "pattern": "^[A-Za-z]{3}$", "example": "USD"})
class CurrencyField(serializers.Field):
    """A 3-letter ISO 4217 code in any case, returned upper-case."""

    def to_internal_value(self, data):
        try:
            return parse_currency(data, name=self.field_name or "currency")
        except MoneyValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from exc

    def to_representation(self, value):
        return value
