"""Stripe payouts (money leaving for a bank account) through the official SDK: the payout half of
`StripeGateway`.

create_payout  POST /v1/payouts {amount, currency, destination, metadata[paydesk_idempotency_key]}
               with our key as Stripe's `Idempotency-Key`: a retry after a 5xx or a lost answer
               replays Stripe's first payout instead of sending a second one.
retrieve_payout  the payout created with a key, found again without creating anything: Stripe has no
               search for payouts, so the payouts created since our id's own time (a ULID: the key
               is the payout's id) are listed, newest first, and matched by their metadata.
payout_destination_check  a `btok_` bank account token is asked of Stripe (`GET /v1/tokens/{id}`:
               its last four digits; `resource_missing` is an unknown destination); a `ba_` bank
               account id can only be read through its account, so it is left to the payout call;
               anything else (a card token, a card number) is no bank account.

How a Stripe payout's status maps onto the interface: `pending` and `in_transit` → in_transit
(Stripe took it; `payout.paid` / `payout.failed` webhooks or reconciliation settle it later);
`paid` → paid; `failed` → failed with Stripe's `failure_code` (`account_closed`, `no_account`, …);
`canceled` → failed `payout_canceled` (the money never left Stripe). A refused create (400: an
unknown destination, Stripe's balance too low) sent nothing: a `failed` result with its code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import stripe
from django.utils import timezone
from stripe.params import PayoutListParams

from apps.core.ids import created_at_of
from apps.core.scrubbing import scrub
from apps.gateways.base import GatewayError, GatewayResult, PayoutDestination, UnknownPaymentMethod
from apps.gateways.stripe_shared import METADATA_KEY, StripeRefused

# How far before our id's own time a payout is looked for (clocks differ), and how far back at
# most when the key carries no time.
CLOCK_SLACK = timedelta(hours=1)
LOOKUP_WITHOUT_TIME = timedelta(days=35)
PAGE_SIZE = 100
PAYOUT_CANCELED = "payout_canceled"


class StripePayouts:
    """The payout calls; `StripeGateway` supplies the client and `_send` (its error mapping)."""

    _api_key: str
    _client: stripe.StripeClient

    def _send(self, call: Callable[[], stripe.StripeObject], *, moves_money: bool) -> dict[str, Any]:
        raise NotImplementedError

    def payout_destination_check(self, *, destination: str) -> PayoutDestination:
        if destination.startswith("ba_"):
            return PayoutDestination(type="bank_account")
        if not destination.startswith("btok_"):
            raise UnknownPaymentMethod("Stripe pays out to a bank account: a btok_ token or a ba_ id.")
        try:
            token = self._send(lambda: self._client.v1.tokens.retrieve(destination), moves_money=False)
        except StripeRefused as refused:
            if refused.error.get("code") == "resource_missing":
                raise UnknownPaymentMethod(refused.error.get("message") or "") from None
            raise GatewayError(refused.error.get("message") or "", code="gateway_bad_request") from None
        account = token.get("bank_account") or {}
        if token.get("type") != "bank_account" or not isinstance(account, dict):
            raise UnknownPaymentMethod("This token is not a bank account.")
        return PayoutDestination(type="bank_account", last4=str(account.get("last4") or "")[:4])

    def create_payout(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str
    ) -> GatewayResult:
        try:
            payout = self._send(
                lambda: self._client.v1.payouts.create(
                    params={
                        "amount": amount,
                        "currency": currency.lower(),
                        "destination": destination,
                        "metadata": {METADATA_KEY: idempotency_key},
                    },
                    options={"idempotency_key": idempotency_key},
                ),
                moves_money=True,
            )
        except StripeRefused as refused:
            error = refused.error
            return GatewayResult(
                status="failed",
                amount=amount,
                currency=currency.upper(),
                failure_code=error.get("code") or error.get("type") or "payout_refused",
                failure_message=error.get("message") or "",
                raw=scrub({"error": error}),
            )
        return payout_result(payout)

    def retrieve_payout(self, *, idempotency_key: str) -> GatewayResult | None:
        made_at = created_at_of(idempotency_key)
        since = made_at - CLOCK_SLACK if made_at else timezone.now() - LOOKUP_WITHOUT_TIME
        params: dict[str, Any] = {"created": {"gte": int(since.timestamp())}, "limit": PAGE_SIZE}
        while True:
            try:
                page = self._send(
                    lambda: self._client.v1.payouts.list(params=cast(PayoutListParams, params)),  # noqa: B023
                    moves_money=False,
                )
            except StripeRefused as refused:
                raise GatewayError(refused.error.get("message") or "", code="gateway_bad_request") from None
            payouts = [item for item in page.get("data") or [] if isinstance(item, dict)]
            for payout in payouts:
                if (payout.get("metadata") or {}).get(METADATA_KEY) == idempotency_key:
                    return payout_result(payout)
            if not page.get("has_more") or not payouts:
                return None
            params = {**params, "starting_after": payouts[-1]["id"]}


def payout_result(payout: dict[str, Any]) -> GatewayResult:
    """A Stripe Payout object (an API answer, or a webhook's `data.object`) as a result."""
    status = payout.get("status")
    common: dict[str, Any] = {
        "reference": str(payout.get("id") or ""),
        "amount": payout.get("amount") if isinstance(payout.get("amount"), int) else 0,
        "currency": str(payout.get("currency") or "").upper(),
        "raw": scrub(payout),
    }
    if status == "paid":
        return GatewayResult(status="paid", **common)
    if status == "failed":
        return GatewayResult(
            status="failed",
            failure_code=str(payout.get("failure_code") or "payout_failed"),
            failure_message=str(payout.get("failure_message") or ""),
            **common,
        )
    if status == "canceled":
        return GatewayResult(
            status="failed",
            failure_code=PAYOUT_CANCELED,
            failure_message="The payout was canceled at Stripe before it left.",
            **common,
        )
    return GatewayResult(status="in_transit", **common)  # pending, in_transit: not settled yet
