"""`payment_method_require_known`: a token the gateway does not know is a bad request, not a charge.

Stripe refuses a charge to an unknown token with 400 `resource_missing` and creates nothing; so does
Paydesk. Payments, deposits and subscriptions ask before they write anything (the payment or
deposit row, its audit row and event, an Idempotency-Key's stored answer), so the refusal leaves
no trace. Only a definite "no such token" refuses: when the gateway cannot answer (an outage, an
open circuit) the request goes on and the charge decides, as before.
"""

from __future__ import annotations

import logging

from apps.core.errors import InvalidRequest
from apps.gateways import get_gateway
from apps.gateways.base import GatewayError, UnknownPaymentMethod

logger = logging.getLogger(__name__)


class PaymentMethodNotFound(InvalidRequest):
    code = "resource_missing"
    default_message = "No such payment method: the payment gateway does not know this token."


def payment_method_require_known(*, token: str, param: str = "payment_method") -> None:
    """Raises PaymentMethodNotFound (400 `resource_missing`, `param` named) for a token the
    configured gateway does not know; returns when it knows it or cannot tell now."""
    try:
        get_gateway().payment_method_check(token=token)
    except UnknownPaymentMethod:
        raise PaymentMethodNotFound(param=param) from None
    except GatewayError as exc:
        logger.warning("payment method check skipped, the gateway could not answer: %s", exc.code)
