"""Rate limits on login, registration and money movement, counted in the shared cache.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope] and are read on each request, so
settings overrides apply at once. Over the limit raises `RateLimited`: 429 `rate_limit_error`
with Retry-After.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from apps.accounts import ratelimits
from apps.accounts.selectors import principal_id
from apps.core.errors import RateLimited


class CacheCountedThrottle(SimpleRateThrottle):
    """A scoped throttle whose counting is atomic (see `apps.accounts.ratelimits`)."""

    num_requests: int  # set from the rate by SimpleRateThrottle.__init__
    duration: int

    def __init__(self) -> None:
        # DRF resolves the rate once per instance from a dict captured at import; read it live.
        # DRF's stubs type the rates as numbers and the scope as optional: a rate is "5/minute".
        self.rate = api_settings.DEFAULT_THROTTLE_RATES[self.scope]  # type: ignore[assignment,index]
        super().__init__()

    def identity(self, request) -> str:
        # REMOTE_ADDR, never X-Forwarded-For: DRF's get_ident trusts that header when
        # NUM_PROXIES is unset, so a client could pick a new "IP" per request. Behind a proxy,
        # apps.core.middleware.TrustedProxyMiddleware sets REMOTE_ADDR from our own proxy's header.
        return "ip:" + (request.META.get("REMOTE_ADDR") or "unknown")

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        window = ratelimits.hit(f"{self.scope}:{self.identity(request)}", window_seconds=self.duration)
        if window.exceeds(self.num_requests):
            raise RateLimited("Too many requests; retry later.", retry_after=window.retry_after)
        return True


class LoginIpThrottle(CacheCountedThrottle):
    scope = "login_ip"


class RegisterThrottle(CacheCountedThrottle):
    scope = "register"


class PasswordResetThrottle(CacheCountedThrottle):
    """Reset emails asked for per address: each one mails someone, so it is kept scarce."""

    scope = "password_reset"


class MoneyMovementThrottle(CacheCountedThrottle):
    """Per principal (a user and their API keys together), for every view that moves money."""

    scope = "money"

    def identity(self, request) -> str:
        principal = principal_id(request)
        return f"principal:{principal}" if principal else super().identity(request)
