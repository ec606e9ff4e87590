"""What the two halves of the Stripe gateway share (charges: `stripe_gateway`; payouts:
`stripe_payouts`): the metadata key that finds an object again by our idempotency key, and the
refusal `_send` turns a decline or a refused request into."""

from __future__ import annotations

from typing import Any

# Written into the metadata of every PaymentIntent and Payout Paydesk creates: our idempotency key.
METADATA_KEY = "paydesk_idempotency_key"


class StripeRefused(Exception):
    """Stripe answered with an outcome rather than an outage: a decline or a refused request."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.error = error
