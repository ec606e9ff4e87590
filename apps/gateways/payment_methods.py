"""`payment_method_require_known`: a token the gateway does not know is a bad request, not a charge.

Stripe refuses a charge to an unknown token with 400 `resource_missing` and creates nothing; so does
Paydesk. Payments, deposits and subscriptions ask before they write anything (the payment or
deposit row, its audit row and event, an Idempotency-Key's stored answer), so the refusal leaves
no trace. Only a definite "no such token" refuses: when the gateway cannot answer (an outage, an
open circuit) the request goes on and the charge decides, as before.
"""

from __future__ import annotations

import logging
import re

from apps.core.errors import InvalidRequest
from apps.gateways import get_gateway
from apps.gateways.base import GatewayError, UnknownPaymentMethod

logger = logging.getLogger(__name__)

# The shapes of gateway token Paydesk accepts as a `payment_method` (whether the gateway knows one
# is the gateway's to say): Stripe-style ids (`tok_…`, `pm_…`, `card_…`, `src_…`: the simulated
# gateway and Stripe), and Authorize.Net's Accept.js payment nonce (`anet_nonce:<dataValue>`, the
# opaque data Accept.js returns, base64) or stored customer payment profile
# (`anet_profile:<customerProfileId>/<paymentProfileId>`).
ANET_NONCE_PREFIX = "anet_nonce:"
ANET_PROFILE_PREFIX = "anet_profile:"
# bandit B105: a pattern of token shapes, not a secret
STRIPE_STYLE_TOKEN = r"(?:tok|pm|card|src)_[A-Za-z0-9_]{1,200}"  # noqa: S105  # nosec B105
ANET_NONCE = rf"{ANET_NONCE_PREFIX}[A-Za-z0-9+/=_-]{{1,1000}}"
ANET_PROFILE = rf"{ANET_PROFILE_PREFIX}[0-9]{{1,20}}/[0-9]{{1,20}}"
TOKEN_PATTERN = re.compile(rf"^(?:{STRIPE_STYLE_TOKEN}|{ANET_NONCE}|{ANET_PROFILE})$")
ANET_PROFILE_PATTERN = re.compile(rf"^{ANET_PROFILE}$")
_ANET_TOKEN = re.compile(rf"^(?:{ANET_NONCE}|{ANET_PROFILE})$")
# Room for the longest token above.
PAYMENT_METHOD_MAX_LENGTH = 1024


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


def authorizenet_token(token: str) -> tuple[str, str]:
    """(prefix, value) of an Authorize.Net token (`anet_nonce:`, `anet_profile:`); anything else is
    a token Authorize.Net cannot know: UnknownPaymentMethod."""
    if not _ANET_TOKEN.match(token):
        raise UnknownPaymentMethod(
            "Authorize.Net takes an Accept.js nonce (anet_nonce:<dataValue>) or a customer payment "
            "profile (anet_profile:<customerProfileId>/<paymentProfileId>)."
        )
    prefix = ANET_NONCE_PREFIX if token.startswith(ANET_NONCE_PREFIX) else ANET_PROFILE_PREFIX
    return prefix, token.removeprefix(prefix)
