"""Applying a provider's payout event (Stripe's `payout.paid`, `payout.failed`, `payout.canceled`)
to the Paydesk payout it names, inside the event's processing transaction (`services._apply`).

Lock order: the webhook event, then the payout, then its wallet (taken by the money function) — the
order the worker and reconciliation take too (payout, wallet). The settling itself is the payouts
app's (`payout_apply_gateway_result`): paid → booked to the gateway's clearing account, failed →
reversed into the wallet with the provider's failure_code, each once whatever else already
settled it; a contradiction (a payout failed at the provider after it was paid at Paydesk) is
`ProviderChangeRejected`, so the event goes dead with a dead letter for a person to look at.
"""

from __future__ import annotations

from apps.payments.provider_events import ProviderChangeDeferred
from apps.payouts.services import payout_apply_gateway_result, payout_lock_for_gateway
from apps.webhooks.models import WebhookEvent
from apps.webhooks.providers.envelope import PayoutNews

Status = WebhookEvent.Status


def payout_news_apply(news: PayoutNews) -> tuple[str, str]:
    """Applies the news to its payout; returns the event's status and outcome. Runs in the caller's
    transaction, which holds the event's row lock."""
    reference = news.result.reference
    if not reference and not news.payout_hint:
        return Status.IGNORED, "the event carries no payout"
    payout = payout_lock_for_gateway(hint=news.payout_hint, reference=reference)
    if payout is None:
        if news.payout_hint:
            # Our payout row commits before its gateway call, so this should not last: retry.
            raise ProviderChangeDeferred(f"no payout {news.payout_hint} (gateway payout {reference})")
        return Status.IGNORED, f"gateway payout {reference} is not one of Paydesk's payouts"
    outcome = payout_apply_gateway_result(actor=None, payout=payout, result=news.result)
    return (Status.PROCESSED if outcome.applied else Status.IGNORED), outcome.detail
