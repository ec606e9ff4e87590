"""Payment gateways behind one interface (`base.PaymentGateway`); `get_gateway` picks the configured one.

The app sits below payments and wallets and imports neither. Its public modules:
- this package: the interface, its errors and `get_gateway`;
- `apps.gateways.calls`: `gateway_call` (the one way payments and deposits call a gateway: circuit
  breaker, timing, metric, GatewayAttempt, raw log) and `attempt_record`;
- `apps.gateways.models`: `GatewayAttempt` and the simulated gateway's tables.
(`calls` and `models` are not re-exported here: this package is imported while apps load.)
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from apps.gateways.base import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayRetryableError,
    PaymentGateway,
    PayoutDestination,
    PayoutsNotSupported,
    UnknownPaymentMethod,
)
from apps.gateways.circuit import CircuitBreakerGateway

GATEWAYS = {
    "simulated": "apps.gateways.simulated.SimulatedGateway",
    "stripe": "apps.gateways.stripe_gateway.StripeGateway",
    "authorizenet": "apps.gateways.authorizenet.AuthorizeNetGateway",
}

__all__ = [
    "GATEWAYS",
    "GatewayError",
    "GatewayResponseLost",
    "GatewayResult",
    "GatewayRetryableError",
    "PaymentGateway",
    "PayoutDestination",
    "PayoutsNotSupported",
    "UnknownPaymentMethod",
    "get_gateway",
]


def get_gateway(name: str | None = None) -> PaymentGateway:
    """The gateway called `name`, or the one settings.PAYMENT_GATEWAY names ("simulated" by default)."""
    name = name or str(getattr(settings, "PAYMENT_GATEWAY", "simulated"))
    try:
        path = GATEWAYS[name]
    except KeyError:
        raise ImproperlyConfigured(f"PAYMENT_GATEWAY {name!r} is not one of {', '.join(sorted(GATEWAYS))}")
    # Every gateway sits behind the circuit breaker: once it keeps failing, calls fail fast as
    # retryable (the payment waits in `processing`) instead of piling onto a sick gateway.
    return CircuitBreakerGateway(import_string(path)())
