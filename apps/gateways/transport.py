"""What a failed HTTP exchange with a gateway means, shared by the gateways that speak HTTP.

A request that never reached the provider (no connection was made) is safe to repeat: a retryable
error. One that went out and got no answer may have taken effect at the provider: on a call that
moves money that is "unknown" (GatewayResponseLost, settled by `retrieve`, never guessed); on a
look-up it is only a timeout, retryable.
"""

from __future__ import annotations

import requests
import urllib3

from apps.gateways.base import GatewayError, GatewayResponseLost, GatewayRetryableError


def never_sent(exc: BaseException | None) -> bool:
    """True when the request cannot have reached the provider (no connection was ever made)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        return isinstance(getattr(exc.args[0], "reason", None), urllib3.exceptions.NewConnectionError)
    return False


def connection_failure(exc: BaseException | None, *, provider: str, moves_money: bool) -> GatewayError:
    """The interface's outcome for a request to `provider` that got no answer (`exc`: the
    `requests` exception behind it)."""
    if never_sent(exc):
        return GatewayRetryableError(f"Could not connect to {provider}.", code="gateway_unreachable")
    if moves_money:
        return GatewayResponseLost(
            f"{provider}'s answer did not arrive; the call may have taken effect.",
            code="gateway_response_lost",
        )
    return GatewayRetryableError(f"{provider}'s answer did not arrive.", code="gateway_timeout")
