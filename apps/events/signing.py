"""`Paydesk-Signature: t=<unix>,v1=<hex>[,v1=<hex>]`: Stripe's scheme, so Stripe's own verification
code works on it. Each `v1` is HMAC-SHA256 keyed with one live secret (the current one, and the
previous one for 24 h after a rotation) over "<t>.<raw body>"."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

HEADER = "Paydesk-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105: the prefix of every secret, not one


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(*, secrets_: Iterable[str], timestamp: int, body: bytes) -> str:
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={signature(secret=secret, timestamp=timestamp, body=body)}" for secret in secrets_)
    return ",".join(parts)
