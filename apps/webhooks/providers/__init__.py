"""The providers Paydesk takes webhooks from: how each signs its deliveries and what its events mean.

Each provider module offers the same five things:
- `verify(body, headers)`: raises unless the raw body carries a valid signature (nothing is parsed
  before this);
- `envelope(payload) -> Envelope`: the provider's event id, type and time;
- `changes(event_type, payload) -> list[ProviderChange]`: what the event says happened to a
  payment, in Paydesk's words ([]: an event Paydesk does not act on);
- `payout_news(event_type, payload) -> PayoutNews | None`: what the event says became of one of
  the provider's payouts (None: not a payout event), applied by `apps.webhooks.payout_events`;
- `STATUS_TYPES`: the event types that set a payment's status (compared by time, see services).
"""

from __future__ import annotations

from types import ModuleType

from apps.webhooks.models import WebhookEvent
from apps.webhooks.providers import authorize_net_events, stripe_events

PROVIDERS: dict[str, ModuleType] = {
    WebhookEvent.Provider.STRIPE: stripe_events,
    WebhookEvent.Provider.AUTHORIZE_NET: authorize_net_events,
}
STATUS_TYPES = frozenset().union(*(module.STATUS_TYPES for module in PROVIDERS.values()))
