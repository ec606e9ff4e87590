"""Payment fields other apps' APIs share (a subscription is paid with a payment method too)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field

from apps.core.fields import TextField
from apps.payments import services


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
